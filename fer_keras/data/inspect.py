"""The data-quality report: counts per split and class, and duplicates (leakage, label conflicts)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from fer_keras.contract import EMOTIONS
from fer_keras.data.loading import LoadReport, pixel_hashes
from fer_keras.data.sources import FaceArrays


@dataclass
class DuplicateReport:
    """Byte-identical images (same decoded pixels) found across and within splits."""

    cross_split: dict[str, int] = field(default_factory=dict)  # "test&train" -> images of the first
    conflicting_groups: int = 0  # groups of identical images with more than one label
    conflicting_images: int = 0
    repeated_groups: int = 0  # groups of 2+ identical images (any split)
    examples: list[tuple[str, ...]] = field(default_factory=list)


def find_duplicates(faces: FaceArrays, max_examples: int = 5) -> DuplicateReport:
    """Group identical images and count leakage between splits and label conflicts."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, h in enumerate(pixel_hashes(faces.images)):
        groups[h].append(i)
    report = DuplicateReport()
    splits = sorted(set(faces.splits.tolist()))
    for a in splits:
        for b in splits:
            if a < b:
                report.cross_split[f"{b} also in {a}"] = 0
    for members in groups.values():
        if len(members) < 2:
            continue
        report.repeated_groups += 1
        member_splits = {faces.splits[i] for i in members}
        for key in report.cross_split:
            b, a = key.split(" also in ")
            if a in member_splits and b in member_splits:
                report.cross_split[key] += sum(1 for i in members if faces.splits[i] == b)
        labels = {int(faces.labels[i]) for i in members}
        if len(labels) > 1:
            report.conflicting_groups += 1
            report.conflicting_images += len(members)
            if len(report.examples) < max_examples:
                shown = [f"{faces.names[i]} ({faces.classes[faces.labels[i]]})" for i in members[:4]]
                if len(members) > 4:
                    shown.append(f"{len(members) - 4} more")
                report.examples.append(tuple(shown))
    return report


def agreement(faces: FaceArrays) -> dict[str, tuple[int, float]]:
    """Per FER2013 class: its images (with a FER+ majority) and the share whose FER+ majority is the
    same emotion; ``all`` for every class together."""
    fer2013, ferplus = faces.fer2013_labels, faces.labels
    out = {}
    for c, name in enumerate(EMOTIONS):
        mask = fer2013 == c
        out[name] = (int(mask.sum()), float((ferplus[mask] == c).mean()) if mask.any() else float("nan"))
    out["all"] = (len(faces), float((ferplus == fer2013).mean()) if len(faces) else float("nan"))
    return out


def agreement_lines(faces: FaceArrays) -> list[str]:
    lines = ["FER2013 label vs FER+ majority (images kept by the FER+ protocol):"]
    lines.append(f"{'FER2013':<10}{'images':>10}{'same':>10}   most common FER+ majority otherwise")
    for c, (name, (n, share)) in enumerate(agreement(faces).items()):
        other = ""
        if name != "all":
            rest = faces.labels[(faces.fer2013_labels == c) & (faces.labels != c)]
            if len(rest):
                top = np.bincount(rest, minlength=len(faces.classes))
                other = f"{faces.classes[int(top.argmax())]} ({top.max() / n:.0%})"
        lines.append(f"{name:<10}{n:>10,}{share:>10.1%}   {other}")
    return lines


def format_report(faces: FaceArrays, load: LoadReport | None = None) -> str:
    """Per-split, per-class counts, totals, skipped files and the duplicate report as text."""
    lines = []
    splits = [s for s in ("train", "val", "test", "all") if (faces.splits == s).any()]
    header = f"{'class':<10}" + "".join(f"{s:>10}" for s in splits) + f"{'total':>10}"
    lines += [header, "-" * len(header)]
    table = np.stack([faces.split(s).class_counts() for s in splits], axis=1)
    for c, name in enumerate(faces.classes):
        lines.append(f"{name:<10}" + "".join(f"{v:>10,}" for v in table[c]) + f"{table[c].sum():>10,}")
    lines.append("-" * len(header))
    lines.append(f"{'total':<10}" + "".join(f"{v:>10,}" for v in table.sum(0)) + f"{table.sum():>10,}")
    subsets = {s: int((faces.subsets == s).sum()) for s in ("Training", "PublicTest", "PrivateTest")}
    if any(subsets.values()):
        lines.append("official subsets: " + ", ".join(f"{k} {v:,}" for k, v in subsets.items() if v))
    if faces.skipped:
        lines.append("skipped: " + ", ".join(f"{k} {v:,}" for k, v in sorted(faces.skipped.items())))
    if faces.fer2013_labels is not None:
        lines += ["", *agreement_lines(faces)]
    dup = find_duplicates(faces)
    lines.append("")
    lines.append("duplicates (identical decoded pixels):")
    lines.append(f"  groups of repeated images: {dup.repeated_groups:,}")
    for key, count in dup.cross_split.items():
        lines.append(f"  {key}: {count:,} images (leakage)")
    lines.append(f"  conflicting labels: {dup.conflicting_groups:,} groups, {dup.conflicting_images:,} images")
    for example in dup.examples:
        lines.append("    e.g. " + " = ".join(example))
    if load is not None:
        cost = ", ".join(f"{k} {v:.2f}s" for k, v in load.seconds.items())
        source = "cache" if load.from_cache else "decoded"
        lines.append("")
        lines.append(f"load: {source} ({cost}); data hash {load.key[:16]}")
    return "\n".join(lines)
