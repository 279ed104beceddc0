"""What a hyper-parameter search found, as pictures: score against each searched setting (PNG) and
TensorBoard's HParams view (``tensorboard --logdir SEARCH/hparams``)."""

from __future__ import annotations

import math
from pathlib import Path

from fer_keras.reporting.plots import _save, plt

SCORE = "val_macro_f1"


def plot_scores(rows: list[dict], names: list[str], specs: dict, path: Path) -> Path:
    """One panel per searched setting: each completed trial's validation macro-F1 against its
    value, coloured by the trial's budget in epochs (log axis for log-sampled ranges)."""
    cols = min(3, len(names)) or 1
    lines = math.ceil(len(names) / cols) or 1
    fig, axes = plt.subplots(lines, cols, figsize=(4.2 * cols, 3.4 * lines), squeeze=False)
    budgets = sorted({r["epochs"] for r in rows})
    colours = {b: plt.cm.viridis(i / max(len(budgets) - 1, 1)) for i, b in enumerate(budgets)}
    for ax, name in zip(axes.flat, names):
        spec = specs[name]
        if spec["type"] == "choice":
            ticks = [str(v) for v in spec["values"]]
            xs = [ticks.index(str(r[name])) for r in rows]
            ax.set_xticks(range(len(ticks)), ticks)
            ax.set_xlim(-0.5, len(ticks) - 0.5)
        else:
            xs = [r[name] for r in rows]
            low, high = spec["min"], spec["max"]
            if spec.get("sampling") == "log":
                ax.set_xscale("log")
                ax.set_xlim(low / 1.25, high * 1.25)
            else:
                ax.set_xlim(low - 0.05 * (high - low), high + 0.05 * (high - low))
        for budget in budgets:
            picked = [(x, r[SCORE]) for x, r in zip(xs, rows) if r["epochs"] == budget]
            ax.scatter(
                *zip(*picked),
                color=colours[budget],
                label=f"{budget} epoch{'s' if budget != 1 else ''}",
                alpha=0.8,
                s=28,
            )
        ax.set_xlabel(name)
        ax.set_ylabel("val macro-F1")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"{len(rows)} completed trials")
    return _save(fig, path)


def write_hparams(rows: list[dict], names: list[str], specs: dict, logdir: Path) -> Path:
    """TensorBoard HParams logs: the experiment's settings and, per completed trial, its values,
    budget and score, rewritten from the trials so a continued search shows every trial once."""
    import shutil

    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    domains = {}
    for name in names:
        spec = specs[name]
        if spec["type"] == "choice":
            domains[name] = hp.HParam(name, hp.Discrete(list(spec["values"])))
        elif spec["type"] == "int":
            domains[name] = hp.HParam(name, hp.IntInterval(int(spec["min"]), int(spec["max"])))
        else:
            domains[name] = hp.HParam(name, hp.RealInterval(float(spec["min"]), float(spec["max"])))
    domains["epochs"] = hp.HParam("epochs", hp.IntInterval(1, max(r["epochs"] for r in rows)))
    shutil.rmtree(logdir, ignore_errors=True)
    with tf.summary.create_file_writer(str(logdir)).as_default():
        hp.hparams_config(hparams=list(domains.values()), metrics=[hp.Metric(SCORE, display_name="val macro-F1")])
    for row in rows:
        with tf.summary.create_file_writer(str(logdir / f"trial_{row['trial']}")).as_default():
            hp.hparams({domains[n]: row[n] for n in domains}, trial_id=str(row["trial"]))
            tf.summary.scalar(SCORE, row[SCORE], step=row["epochs"])
    return logdir
