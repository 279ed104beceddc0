"""Reporting: metrics, plots, Grad-CAM / t-SNE, evaluation reports, run tables, model cards, significance."""
