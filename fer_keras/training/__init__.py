"""Training: the run's options (``config``), the loop, its callbacks, distillation and the KerasTuner search."""
