"""The package's shape: imports run one way (no cycle, counting imports inside functions), lower
layers never import upper ones, commands answer --help at once without TensorFlow."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fer_keras"
COMMANDS = (
    "train",
    "evaluate",
    "tune",
    "live",
    "serve",
    "export",
    "compare",
    "significance",
    "model_card",
    "analyze",
    "ensemble",
)
# Layer of each part of the package: a module may import its own layer and those below it.
LAYERS = {
    "errors": 0,
    "logs": 0,
    "contract": 1,
    "data": 2,
    "models": 2,
    "runs": 3,
    "inference": 4,
    "training": 5,
    "reporting": 5,
    "app": 5,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Every fer_keras module a file imports, at the top or inside a function.

    ``from fer_keras.data import loading`` imports the submodule ``loading``; it counts as an
    import of the package itself only when it takes a name defined there."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fer_keras"):
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & modules
            found |= submodules
            if len(submodules) < len(node.names):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("fer_keras"))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    names = set(modules)
    return {name: {m for m in imports_of(path, names) if m in modules and m != name} for name, path in modules.items()}


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_no_import_cycle():
    graph = import_graph()
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt] if nxt in stack else [node, nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_the_cycle_check_finds_a_cycle(tmp_path, monkeypatch):
    """The check above can fail: a module importing its importer is reported."""
    graph = {"a": {"b"}, "b": {"a"}}
    monkeypatch.setitem(globals(), "import_graph", lambda: graph)
    with pytest.raises(pytest.fail.Exception, match="import cycle"):
        test_no_import_cycle()


def test_lower_layers_never_import_upper_ones():
    wrong = []
    for module, imported in import_graph().items():
        if module.endswith("__main__") or layer(module) is None:
            continue  # command modules sit on top and may import anything
        for target in imported:
            if layer(target) is None and target != "fer_keras":
                wrong.append(f"{module} imports the command module {target}")
            elif layer(target) is not None and layer(target) > layer(module):
                wrong.append(f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})")
    assert not wrong, "\n".join(sorted(wrong))


@pytest.mark.parametrize("command", COMMANDS)
def test_command_modules_are_thin(command):
    """A command parses, calls the library and prints: it defines no library code of its own."""
    tree = ast.parse((PACKAGE / f"{command}.py").read_text())
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    assert not classes
    top_imports = {
        alias.name.split(".")[0]
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    assert not top_imports & {"tensorflow", "keras", "keras_tuner", "cv2", "sklearn", "fastapi", "uvicorn"}


@pytest.mark.parametrize("command", [*COMMANDS, "data"])
def test_help_answers_at_once_without_tensorflow(command):
    code = (
        "import sys, runpy; sys.argv = ['x', '--help']\n"
        f"try: runpy.run_module('fer_keras.{command}', run_name='__main__')\n"
        "except SystemExit as e: assert e.code == 0, e.code\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'\n"
    )
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    assert "usage: python -m fer_keras" in done.stdout and not done.stderr
    assert seconds < 10  # generous: a loaded CI machine; TensorFlow alone takes longer than this to import


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_help(command):
    import importlib

    parser = importlib.import_module(f"fer_keras.{command}").build_parser()
    missing = [action.option_strings or action.dest for action in parser._actions if not action.help]
    assert not missing


@pytest.mark.parametrize("command", ["evaluate", "live", "significance", "serve"])
def test_model_help_names_every_format(command):
    import importlib

    text = " ".join(importlib.import_module(f"fer_keras.{command}").build_parser().format_help().split())
    for kind in ("run dir", ".keras", "SavedModel", ".tflite", ".onnx"):
        assert kind in text, kind


def test_limit_help_says_it_cuts_validation_and_test():
    from fer_keras.train import build_parser

    text = " ".join(build_parser().format_help().split())
    assert "N/4 of validation and of test" in text


def test_a_missing_data_path_answers_before_tensorflow_loads(tmp_path):
    code = (
        "import sys\nfrom fer_keras.train import main\n"
        f"assert main(['--data', {str(tmp_path / 'none')!r}]) == 2\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "does not exist; download FER2013" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_native_log_lines_are_filtered_from_a_commands_stderr():
    """TensorFlow's absl-format lines go; the command's own messages stay, in order."""
    code = (
        "import os\nfrom fer_keras.cli import NativeLogFilter\n"
        "f = NativeLogFilter()\n"
        "os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n')\n"
        "os.write(2, b'I0000 00:00:1796306625.974854   11274 port.cc:153] oneDNN custom operations are on.\\n')\n"
        "os.write(2, b'To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow\\n')\n"
        "os.write(2, b'error: the real message\\n')\n"
        "os.write(2, b'files 1/3\\rWARNING: All log messages before absl::InitializeLog() is called\\n')\n"
        "os.write(2, b'E0000 00:00:1796305407.428541    5477 cuda_platform.cc:52] failed call to cuInit\\n')\n"
        "import sys; print('python stderr', file=sys.stderr)\n"
        "f.close()\n"
        "os.write(2, b'after close\\n')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == 0
    assert done.stderr == b"error: the real message\nfiles 1/3\rpython stderr\nafter close\n"


def test_the_wheel_carries_the_package_and_the_shipped_models():
    """The wheel takes the whole fer_keras package (every subpackage) and maps the checkout's
    top-level saved_models/ to fer_keras/saved_models, where shipped_models_dir() looks first; it
    leaves out only SavedModel folders of models that also ship a .keras and a .tflite file.
    (.ci/run builds the wheel and checks what it holds.)"""
    import tomllib

    wheel = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["only-include"] == ["fer_keras", "saved_models"]
    assert wheel["sources"] == {"saved_models": "fer_keras/saved_models"}
    saved = PACKAGE.parent / "saved_models"
    for pattern in wheel["exclude"]:
        name = pattern.strip("/").removeprefix("saved_models/")
        assert pattern == f"/saved_models/{name}/" and name != "mobilenetv2"
        for suffix in (".keras", ".tflite", ".json"):
            assert (saved / f"{name}{suffix}").is_file() or not (saved / name).exists(), (name, suffix)


def test_the_fer_keras_dispatcher(capsys):
    from fer_keras.__main__ import COMMANDS as DISPATCHED
    from fer_keras.__main__ import main

    assert set(DISPATCHED) == {*COMMANDS, "data"}
    assert main(["--help"]) == 0 and "fer-keras COMMAND" in capsys.readouterr().out
    assert main(["bogus"]) == 2 and "unknown command 'bogus'" in capsys.readouterr().err
    assert main(["compare", "--help"]) == 0 and "usage: fer-keras compare" in capsys.readouterr().out
    assert main(["live", "--help"]) == 0 and "usage: fer-keras live [" in capsys.readouterr().out
    assert main(["data", "--help"]) == 0 and "usage: fer-keras data" in capsys.readouterr().out
    from fer_keras.live import build_parser

    assert build_parser().prog == "python -m fer_keras.live"  # as it was, once the dispatcher is done


def test_data_help_is_plain_text(capsys):
    from fer_keras.data.__main__ import main

    assert main(["--help"]) == 0
    assert "``" not in capsys.readouterr().out


def test_evaluate_help_gives_the_data_default_it_uses():
    from fer_keras.evaluate import build_parser

    assert "$FER_KERAS_DATA, else data/fer2013" in " ".join(build_parser().format_help().split())


@pytest.mark.parametrize(
    "command,argv",
    [
        ("evaluate", ["--model", "{missing}"]),
        ("export", ["--model", "{missing}", "--format", "tflite"]),
        ("export", ["--format", "tflite", "--quantize", "int8"]),
        ("ensemble", ["{missing}", "{missing}", "--out", "{tmp}/e.keras"]),
        ("live", ["--model", "{missing}", "--source", "fer_keras/samples/astronaut.jpg"]),
        ("serve", ["--model", "{missing}"]),
        ("significance", ["{missing}", "{missing}"]),
    ],
)
def test_bad_model_paths_and_options_answer_before_tensorflow_loads(command, argv, tmp_path):
    data = os.environ.get("FER_KERAS_DATA") or str(tmp_path)
    args = [a.format(missing=tmp_path / "none.keras", tmp=tmp_path) for a in argv]
    if command in ("evaluate", "significance"):
        (tmp_path / "happy").mkdir(exist_ok=True)  # a data path that passes its own check
        args += ["--data", str(tmp_path)] if not os.environ.get("FER_KERAS_DATA") else ["--data", data]
    code = (
        f"import sys\nfrom fer_keras.{command} import main\n"
        f"assert main({args!r}) == 2\n"
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=PACKAGE.parent)
    assert done.returncode == 0, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "does not exist" in done.stderr or "needs --data" in done.stderr, done.stderr
