"""Recordings at scale: many videos and images through the live app's pipeline, summarised per face.

For each input file, ``OUT/<name>/`` holds ``frames.csv`` (the live app's per-frame schema),
``faces.csv`` (per tracked face: time on screen, mean probability per emotion, the share of its
frames each emotion leads) and, for a video, ``timeline.png``; ``done.json`` is written last. A
file's folder is built under a temporary name and renamed into place, so a file either has all of
its outputs or none: a run started again skips the files already done (same file, same options).
For the whole run, ``OUT/faces.csv`` (and ``faces.parquet`` with pyarrow) stacks every file's faces
and ``OUT/summary.md`` says what was done.

Files run one after another (``workers=1``), in ``workers`` processes each holding its own model
and a share of the cores, or as Ray actors (``ray=``): the same ``FileAnalyzer`` does the work in
every mode, so every mode writes the same rows.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fer_keras.app.live import IMAGE_SUFFIXES, csv_header, csv_row
from fer_keras.app.recognizer import DETECT_EVERY, DNN_SIZE
from fer_keras.errors import FerKerasError, first_line

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp"}
DONE = "done.json"
# A track shorter than this is left out of the timeline plot (a flicker of a false detection);
# it stays in the tables.
TIMELINE_MIN_SECONDS = 0.5
TIMELINE_MAX_FACES = 6


@dataclass
class AnalyzeOptions:
    """What every file is run with: the live app's recognizer options, and a frame limit."""

    model: str | None = None
    detector: str = "dnn"
    runtime: str = "auto"
    margin: float | None = None
    smoothing: float = 0.6
    detect_every: int = DETECT_EVERY
    flip: bool = True
    dnn_size: int = DNN_SIZE
    downscale: float = 2.0
    max_frames: int = 0  # per video; 0 = all

    def recognizer(self, threads: int | None = None):
        from fer_keras.app.recognizer import EmotionRecognizer

        return EmotionRecognizer(
            self.model,
            self.detector,
            margin=self.margin,
            smoothing=self.smoothing,
            detect_every=self.detect_every,
            flip=self.flip,
            threads=threads,
            downscale=self.downscale,
            dnn_size=self.dnn_size,
            runtime=self.runtime,
        )

    def fingerprint(self) -> dict:
        """What a finished file's results depend on, besides the file itself."""
        options = asdict(self)
        if options["model"] is not None:
            options["model"] = (
                str(Path(options["model"]).resolve()) if Path(options["model"]).exists() else options["model"]
            )
        return options


@dataclass
class Job:
    """One input file and the folder its results go to."""

    source: str
    target: str
    kind: str  # "video" or "image"


@dataclass
class FileResult:
    """What became of one file."""

    source: str
    target: str
    status: str  # "analyzed", "done" (finished by an earlier run), "failed"
    frames: int = 0
    faces: int = 0
    seconds: float = 0.0
    message: str = ""


@dataclass
class AnalyzeSummary:
    """The run: one result per input file, the problems met while gathering them, and the time."""

    results: list[FileResult]
    skipped: list[str] = field(default_factory=list)  # inputs that named nothing to analyze, with why
    seconds: float = 0.0
    out: Path = Path(".")

    def counts(self) -> dict[str, Any]:
        by_status = {s: sum(r.status == s for r in self.results) for s in ("analyzed", "done", "failed")}
        finished = [r for r in self.results if r.status != "failed"]
        return {
            "files": len(self.results),
            **by_status,
            "skipped": len(self.skipped),
            "frames": sum(r.frames for r in finished),
            "faces": sum(r.faces for r in finished),
            "seconds": round(self.seconds, 1),
        }


# --------------------------------------------------------------------------- inputs


def media_kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    return "video" if suffix in VIDEO_SUFFIXES else "image" if suffix in IMAGE_SUFFIXES else None


def collect_inputs(inputs: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """The media files that ``inputs`` name (files, folders searched recursively, globs), in a
    stable order without repeats; and a one-line reason for each input that named none."""
    found: list[Path] = []
    skipped: list[str] = []
    for item in inputs:
        text = str(item)
        if glob.has_magic(text):
            matches = [Path(m) for m in sorted(glob.glob(text, recursive=True))]
            files = [m for m in matches if m.is_file() and media_kind(m)]
            if not files:
                skipped.append(f"{text}: matches no video or image")
            found += files
            continue
        path = Path(text)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and media_kind(p) and not _hidden(p, path))
            if not files:
                skipped.append(f"{path}: folder holds no videos or images")
            found += files
        elif not path.exists():
            skipped.append(f"{path}: does not exist")
        elif media_kind(path) is None:
            skipped.append(f"{path}: not a video or image (by its name)")
        else:
            found.append(path)
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return unique, skipped


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def output_names(files: list[Path]) -> list[str]:
    """A folder name per file: its stem, made unique by a hash of its path where stems repeat."""
    stems = [f.stem for f in files]
    return [
        stem if stems.count(stem) == 1 else f"{stem}-{hashlib.sha1(str(f).encode()).hexdigest()[:8]}"
        for stem, f in zip(stems, files)
    ]


def check_out_folder(out: Path) -> None:
    """The output folder can be made and written, checked before any file is read."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise FerKerasError(f"cannot write to --out {out}: {err.strerror or first_line(err)}") from None


def source_stamp(path: Path) -> dict:
    stat = path.stat()
    return {"source": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def finished(job: Job, options: AnalyzeOptions) -> FileResult | None:
    """The result an earlier run left for this file with the same options, if any."""
    done = Path(job.target) / DONE
    try:
        record = json.loads(done.read_text())
        stamp = source_stamp(Path(job.source))
    except (OSError, ValueError):
        return None
    if record.get("stamp") != stamp or record.get("options") != options.fingerprint():
        return None
    return FileResult(job.source, job.target, "done", record["frames"], record["faces"], record["seconds"])


# --------------------------------------------------------------------------- one file


class FileAnalyzer:
    """One model (through ``EmotionRecognizer``) that analyzes files one at a time: what a worker
    process or a Ray actor holds."""

    def __init__(self, options: AnalyzeOptions, threads: int | None = None):
        if threads:
            import cv2

            cv2.setNumThreads(threads)
        self.options = options
        self.recognizer = options.recognizer(threads)

    def __call__(self, job: Job, progress: Callable[[int], None] | None = None) -> FileResult:
        started = time.perf_counter()
        target = Path(job.target)
        partial = target.parent / f".{target.name}.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        try:
            if job.kind == "video":
                frames, fps, note = self._video(job.source, partial / "frames.csv", progress)
            else:
                frames, fps, note = self._image(job.source, partial / "frames.csv"), None, ""
            faces = face_summary(partial / "frames.csv", fps)
            faces.to_csv(partial / "faces.csv", index=False)
            if job.kind == "video":
                timeline_plot(partial / "frames.csv", faces, partial / "timeline.png", Path(job.source).name)
            seconds = round(time.perf_counter() - started, 2)
            record = {
                "stamp": source_stamp(Path(job.source)),
                "options": self.options.fingerprint(),
                "frames": frames,
                "faces": len(faces),
                "seconds": seconds,
                "fps": fps,
                "note": note,
            }
            (partial / DONE).write_text(json.dumps(record, indent=2))
            if target.exists():  # an earlier run with other options, or of an older file
                shutil.rmtree(target)
            os.replace(partial, target)
        except FerKerasError as err:
            shutil.rmtree(partial, ignore_errors=True)
            return FileResult(job.source, job.target, "failed", message=str(err))
        except Exception as err:  # noqa: BLE001 - a file that breaks a decoder must not stop the others
            shutil.rmtree(partial, ignore_errors=True)
            return FileResult(job.source, job.target, "failed", message=f"{type(err).__name__}: {first_line(err)}")
        return FileResult(job.source, job.target, "analyzed", frames, len(faces), seconds, note)

    def _video(self, source: str, csv_path: Path, progress) -> tuple[int, float, str]:
        from fer_keras.app.live import run_video

        expected = frame_count(source)
        summary = run_video(
            self.recognizer,
            source,
            display=False,
            csv_path=str(csv_path),
            max_frames=self.options.max_frames,
            progress=progress,
        )
        fps = summary.video_fps
        note = ""
        wanted = min(expected, self.options.max_frames) if self.options.max_frames else expected
        if wanted and summary.frames < wanted - 1:  # containers often overstate their count by one
            note = f"ended after {summary.frames} of {expected} frames (truncated?)"
        return summary.frames, fps, note

    def _image(self, source: str, csv_path: Path) -> int:
        from fer_keras.app.recognizer import to_bgr

        faces = self.recognizer.analyze(to_bgr(Path(source)))
        with open(csv_path, "w", newline="") as f:
            rows = csv.writer(f)
            rows.writerow(csv_header(self.recognizer.classes))
            rows.writerows(csv_row(0, 0.0, face) for face in faces)
        return 1


def frame_count(source: str) -> int:
    """The frames a video's header announces (0 when it says nothing)."""
    import cv2

    capture = cv2.VideoCapture(source)
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    capture.release()
    return count


def face_summary(frames_csv: Path, fps: float | None):
    """Per tracked face: its frames, first and last second, time on screen, mean probability per
    emotion (``mean_<emotion>``), the share of its frames each emotion leads (``lead_<emotion>``)
    and the emotion that leads most."""
    import pandas as pd

    table = pd.read_csv(frames_csv)
    classes = [c[2:] for c in table.columns if c.startswith("p_")]
    rows = []
    for face_id, track in table.groupby("face_id", sort=True):
        leads = track["label"].value_counts(normalize=True)
        row = {
            "face_id": int(face_id),
            "frames": len(track),
            "first_s": round(float(track["time_s"].min()), 3),
            "last_s": round(float(track["time_s"].max()), 3),
            "seconds": round(len(track) / fps, 3) if fps else 0.0,
            "dominant": leads.idxmax(),
        }
        row.update({f"mean_{c}": round(float(track[f"p_{c}"].mean()), 4) for c in classes})
        row.update({f"lead_{c}": round(float(leads.get(c, 0.0)), 4) for c in classes})
        rows.append(row)
    columns = ["face_id", "frames", "first_s", "last_s", "seconds", "dominant"]
    columns += [f"mean_{c}" for c in classes] + [f"lead_{c}" for c in classes]
    return pd.DataFrame(rows, columns=columns)


def timeline_plot(frames_csv: Path, faces, path: Path, title: str) -> None:
    """One panel per tracked face (the longest first): its emotions' probabilities over time,
    stacked to 1, each in the live overlay's colour, on the video's own time axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from fer_keras.app.live import COLORS

    table = pd.read_csv(frames_csv)
    classes = [c[2:] for c in table.columns if c.startswith("p_")]
    long_enough = faces[faces["seconds"] >= TIMELINE_MIN_SECONDS]
    shown = long_enough.sort_values(["seconds", "first_s"], ascending=[False, True]).head(TIMELINE_MAX_FACES)
    hidden = len(faces) - len(shown)
    end = float(table["time_s"].max()) if len(table) else 1.0
    panels = max(len(shown), 1)
    height = 1.3 + 1.5 * panels  # inches: a fixed band for the title, the legend and the time axis
    fig, axes = plt.subplots(panels, 1, figsize=(10, height), sharex=True, squeeze=False)
    fig.subplots_adjust(top=1 - 0.95 / height, bottom=0.55 / height, left=0.07, right=0.98, hspace=0.45)
    colors = [tuple(v / 255 for v in reversed(COLORS[c])) for c in classes]
    for ax, (_, face) in zip(axes[:, 0], shown.iterrows()):
        track = table[table["face_id"] == face["face_id"]].sort_values("time_s")
        # a gap where the face was away stays empty rather than being drawn across
        times = track["time_s"].to_numpy()
        probs = [track[f"p_{c}"].to_numpy() for c in classes]
        step = 1.5 * (float(pd.Series(times).diff().median()) if len(times) > 1 else 1.0)
        breaks = [0, *[i for i in range(1, len(times)) if times[i] - times[i - 1] > step], len(times)]
        for a, b in zip(breaks[:-1], breaks[1:]):
            ax.stackplot(times[a:b], *[p[a:b] for p in probs], colors=colors, linewidth=0)
        lead = face[f"lead_{face['dominant']}"]
        ax.set_title(
            f"face {face['face_id']}: {face['seconds']:.1f} s on screen, mostly {face['dominant']} "
            f"({lead:.0%} of its frames)",
            fontsize=10,
            loc="left",
        )
        ax.set_ylim(0, 1)
        ax.set_xlim(0, max(end, 1e-3))
        ax.set_ylabel("probability")
    if shown.empty:
        axes[0, 0].text(0.5, 0.5, "no face tracked for 0.5 s or more", ha="center", va="center", fontsize=12)
        axes[0, 0].set_yticks([])
    axes[-1, 0].set_xlabel("time (s)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors]
    fig.legend(
        handles,
        classes,
        loc="upper left",
        bbox_to_anchor=(0.06, 1 - 0.3 / height),
        ncol=len(classes),
        fontsize=9,
        frameon=False,
    )
    note = f"; {hidden} shorter track{'s' if hidden > 1 else ''} not shown" if hidden > 0 else ""
    fig.suptitle(
        f"{title}: each tracked face's emotions over time{note}",
        x=0.07,
        y=1 - 0.08 / height,
        ha="left",
        va="top",
        fontsize=11,
    )
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --------------------------------------------------------------------------- the run


def analyze_files(
    inputs: Iterable[str | Path],
    out: str | Path,
    options: AnalyzeOptions | None = None,
    *,
    workers: int = 1,
    ray: str | bool | None = None,
    progress: bool = True,
) -> AnalyzeSummary:
    """Analyze every video and image ``inputs`` name into ``out``; files already done are kept."""
    started = time.perf_counter()
    options = options or AnalyzeOptions()
    if workers < 1:
        raise FerKerasError(f"--workers must be at least 1, got {workers}")
    files, skipped = collect_inputs(inputs)
    if not files:
        reasons = "; ".join(skipped) if skipped else "no inputs given"
        raise FerKerasError(f"nothing to analyze: {reasons}")
    out = Path(out)
    check_out_folder(out)
    for stale in out.glob(".*.partial-*"):  # what an interrupted earlier run was still writing
        shutil.rmtree(stale, ignore_errors=True)
    jobs = [Job(str(f), str(out / name), media_kind(f)) for f, name in zip(files, output_names(files))]
    results: dict[str, FileResult] = {}
    todo = []
    for job in jobs:
        done = finished(job, options)
        if done:
            results[job.source] = done
        else:
            todo.append(job)
    for problem in skipped:
        print(f"skipped {problem}", file=sys.stderr)
    if todo:
        with _progress(len(jobs), len(jobs) - len(todo), progress) as bar:
            if ray is not None and ray is not False:
                run = _run_ray(todo, options, workers, None if ray is True else ray, bar)
            elif workers > 1:
                run = _run_processes(todo, options, workers, bar)
            else:
                run = _run_serial(todo, options, bar)
            for result in run:
                results[result.source] = result
                if result.status == "failed":
                    bar.write(f"failed {result.source}: {result.message}")
                elif result.message:
                    bar.write(f"warning {result.source}: {result.message}")
    summary = AnalyzeSummary([results[j.source] for j in jobs], skipped, time.perf_counter() - started, out)
    write_run_tables(summary)
    return summary


def worker_threads(workers: int) -> int:
    """Threads per worker so that the workers together use the cores once."""
    return max(1, (os.cpu_count() or 1) // workers)


def _run_serial(jobs: list[Job], options: AnalyzeOptions, bar) -> Iterator[FileResult]:
    analyzer = FileAnalyzer(options)
    for job in jobs:
        frames = bar.frames(job)
        try:
            result = analyzer(job, frames.update)
        finally:
            frames.close()
        bar.file_done(result.frames)
        yield result


_WORKER: FileAnalyzer | None = None


def _start_worker(options: AnalyzeOptions, threads: int) -> None:
    global _WORKER
    _WORKER = FileAnalyzer(options, threads)


def _work(job: Job) -> FileResult:
    return _WORKER(job)


def _run_processes(jobs: list[Job], options: AnalyzeOptions, workers: int, bar) -> Iterator[FileResult]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    # spawn: a fresh interpreter per worker (TensorFlow does not survive a fork)
    with ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(options, worker_threads(workers)),
    ) as pool:
        futures = [pool.submit(_work, job) for job in jobs]
        for future in as_completed(futures):
            try:
                result = future.result()
            except BrokenProcessPool:
                raise FerKerasError(
                    "a worker process stopped before it could start its work; from a script, call "
                    "analyze_files(..., workers=N) under `if __name__ == '__main__':` (processes are "
                    "spawned and import the script again)"
                ) from None
            bar.file_done(result.frames)
            yield result


NICENESS = "RAY_worker_niceness"


def _run_ray(jobs: list[Job], options: AnalyzeOptions, workers: int, address: str | None, bar) -> Iterator[FileResult]:
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise FerKerasError("--ray needs Ray: pip install 'fer_keras[ray]'") from None
    if not ray.is_initialized():
        # Ray runs its workers at nice 15 so that its own daemons stay responsive; on a machine with
        # other work that left the actors 3x slower than --workers processes. An instance started
        # here for this job runs them at the normal priority (a cluster keeps its own setting).
        niceness = {} if address or os.environ.get(NICENESS) else {NICENESS: "0"}
        os.environ.update(niceness)
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        except Exception as err:  # noqa: BLE001 - Ray raises several types for an unreachable cluster
            raise FerKerasError(
                f"cannot start or reach Ray{f' at {address}' if address else ''}: {first_line(err)}"
            ) from None
        finally:
            for name in niceness:
                os.environ.pop(name, None)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    # --workers actors (default: one per CPU of the cluster), each holding a model on its share of the CPUs
    actors_wanted = workers if workers > 1 else cpus
    threads = max(1, cpus // actors_wanted)
    actor = ray.remote(num_cpus=threads)(FileAnalyzer)
    actors = [actor.remote(options, threads) for _ in range(min(actors_wanted, len(jobs)))]
    pool = ActorPool(actors)
    try:
        for result in pool.map_unordered(lambda a, job: a.__call__.remote(job), jobs):
            bar.file_done(result.frames)
            yield result
    finally:
        for a in actors:
            ray.kill(a)


class _Progress:
    """Files and frames on stderr (tqdm); silent when asked or when stderr is not a terminal's."""

    def __init__(self, total: int, done: int, enabled: bool):
        from tqdm import tqdm

        self.tqdm = tqdm
        self.enabled = enabled
        self.files = tqdm(total=total, initial=done, unit="file", desc="files", disable=not enabled, file=sys.stderr)
        self.frames_seen = 0

    def frames(self, job: Job):
        """A bar over one video's frames (serial runs); none for an image."""
        if job.kind == "image":
            return self.tqdm(disable=True)
        return self.tqdm(
            total=frame_count(job.source) or None, unit="frame", desc=Path(job.source).name[:30], leave=False,
            disable=not self.enabled, file=sys.stderr,
        )  # fmt: skip

    def file_done(self, frames: int) -> None:
        self.frames_seen += frames
        self.files.update(1)

    def write(self, text: str) -> None:
        self.tqdm.write(text, file=sys.stderr)

    def close(self) -> None:
        self.files.close()


@contextlib.contextmanager
def _progress(total: int, done: int, enabled: bool) -> Iterator[_Progress]:
    bar = _Progress(total, done, enabled)
    try:
        yield bar
    finally:
        bar.close()


def write_run_tables(summary: AnalyzeSummary) -> None:
    """``faces.csv`` (and ``faces.parquet`` with pyarrow) stacking every finished file's faces with
    the file's path first, and ``summary.md``; each written to a temporary name, then renamed."""
    import pandas as pd

    out = summary.out
    tables = []
    for result in summary.results:
        faces_csv = Path(result.target) / "faces.csv"
        if result.status != "failed" and faces_csv.exists():
            table = pd.read_csv(faces_csv)
            table.insert(0, "file", result.source)
            tables.append(table)
    columns = list(tables[0].columns) if tables else ["file", "face_id"]
    tables = [t for t in tables if len(t)]  # a file without faces adds no rows
    faces = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=columns)
    _atomic(out / "faces.csv", lambda p: faces.to_csv(p, index=False))
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        pass
    else:
        _atomic(out / "faces.parquet", lambda p: faces.to_parquet(p, index=False))
    _atomic(out / "summary.md", lambda p: p.write_text(summary_markdown(summary, faces)))


def _atomic(path: Path, write: Callable[[Path], Any]) -> None:
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    write(partial)
    os.replace(partial, path)


def summary_markdown(summary: AnalyzeSummary, faces) -> str:
    counts = summary.counts()
    lines = [
        "# Analysis",
        "",
        f"{counts['files']} files: {counts['analyzed']} analyzed now, {counts['done']} done before, "
        f"{counts['failed']} failed; {counts['skipped']} inputs named nothing to analyze. "
        f"{counts['frames']:,} frames, {counts['faces']} tracked faces, {counts['seconds']:.1f} s.",
        "",
        "| file | status | frames | faces | longest face: seconds, mostly |",
        "|---|---|---|---|---|",
    ]
    for r in summary.results:
        longest = ""
        mine = faces[faces["file"] == r.source] if len(faces) else faces
        if len(mine):
            top = mine.sort_values(["seconds", "frames"], ascending=False).iloc[0]
            longest = f"{top['seconds']:.1f} s, {top['dominant']}"
        status = r.status if not r.message else f"{r.status}: {r.message}"
        lines.append(f"| {Path(r.source).name} | {status} | {r.frames} | {r.faces} | {longest} |")
    if summary.skipped:
        lines += ["", "Skipped inputs:", "", *[f"- {s}" for s in summary.skipped]]
    lines += ["", "Per-file outputs: `<name>/frames.csv`, `<name>/faces.csv`, `<name>/timeline.png` (videos).", ""]
    return "\n".join(lines)
