"""Every fenced example of README.md and docs/*.md runs, as written, shortened only by arguments.

The examples are read from the Markdown files at collection time (never copied here), one test per
fenced block, named ``file:line``:

- ``bash``/``sh``/``shell`` blocks are split into commands (backslash continuations joined, ``#``
  comments dropped, ``;`` and ``&&`` separating). ``python -m visiontasks ...`` and ``visiontasks ...``
  run in-process through ``visiontasks.cli.main`` with shortening arguments APPENDED (few samples,
  one epoch, few batches, small detector inputs; ``tune``: two trials); GPU-only settings are replaced by CPU ones (see
  ``ON_CPU``); under ``torchrun``/``srun`` the visiontasks command runs alone. Data at a documented
  path (``path/to/flowers``, ``data/train.json``, ``my_data``,
  ``photos/``) is written first from the built-in shapes in the format the data module reads.
  ``<run>`` / ``<run id>`` stand for the run made by an earlier ``fit`` of the same doc (it is run
  first when the block has none). ``pip install`` lines are not run: the extras they name must
  exist in pyproject.toml. ``pytest`` lines are CI's job.
- ``python`` blocks are executed in a fresh namespace, with ``pytorch_lightning.Trainer`` shortened
  (one epoch, few batches, CPU) and ``ShapesDataModule`` given few samples; files they read are
  written first. Pretrained torchvision weights are never downloaded: the file torchvision would
  download is placed in a temporary ``$TORCH_HOME`` first, with random weights of the same
  architecture, so the real loading code runs.
- ``yaml`` blocks that are config fragments are merged as an extra ``--config`` into a shipped config
  of the same doc and must come back in ``--print_config``.
"""

from __future__ import annotations

import ast
import functools
import json
import re
import shlex
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from helpers import run_cli
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

SHELL = {"bash", "sh", "shell"}
PYTHON = {"python", "py"}
YAML = {"yaml", "yml"}

# Commands that are not run, and why. Anything else that is not `visiontasks` or `pip` fails the test.
NOT_RUN = {
    "pytest": "the test suite itself: CI runs it",
    "hf": "the Hugging Face Hub's command (upload, download): needs the network and a login",
}
# Launchers of several processes: the visiontasks command they start runs alone, on the CPU (tests/test_ddp.py
# runs real multi-process and torchrun launches).
LAUNCHERS = ("torchrun", "srun")
# Settings that need GPUs: appended CPU equivalents, so the rest of the command still runs here.
ON_CPU = {"trainer.accelerator": "cpu", "trainer.devices": "1", "trainer.strategy": "auto", "trainer.num_nodes": "1"}
# Examples slower than ~20 s here (detectors, big backbones, tune's trials, cv's folds, the learning-rate search):
# `pytest -m "not slow"` leaves them out.
SLOW = re.compile(r"faster_rcnn|mask_rcnn|DetectionTask|InstanceSegmentationTask|resnet50|visiontasks tune|visiontasks cv |unet_timm|lr_find")

SUBCOMMANDS = ("fit", "validate", "test", "predict", "export", "tune", "cv")
RUN_MARK = "@RUN@"  # `<run>` / `<run id>` while a command is split into words
PLACEHOLDER = re.compile(r"<run(?: id)?>")


# --------------------------------------------------------------------------------------------------
# Finding the examples


@dataclass
class Example:
    doc: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str

    @property
    def id(self) -> str:
        return f"{self.doc.relative_to(ROOT).as_posix()}:{self.line}"


def fenced_blocks(doc: Path) -> Iterator[Example]:
    """The fenced code blocks of a Markdown file (CommonMark fences: ``` or ~~~, closed by a longer-or-equal run;
    indented ones, as in list items, lose their indent)."""
    lines = doc.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = re.match(r"^(\s*)(`{3,}|~{3,})\s*([^`\s]*)", lines[i])
        if not opening:
            i += 1
            continue
        indent, fence, lang = opening.groups()
        body, j = [], i + 1
        while j < len(lines) and not re.match(rf"^\s*{fence[0]}{{{len(fence)},}}\s*$", lines[j]):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j].lstrip())
            j += 1
        yield Example(doc, i + 1, lang.lower(), "\n".join(body) + "\n")
        i = j + 1


def examples(langs: set[str]) -> list[Example]:
    return [block for doc in DOCS for block in fenced_blocks(doc) if block.lang in langs]


def params(langs: set[str]) -> list[Any]:
    return [
        pytest.param(block, id=block.id, marks=[pytest.mark.slow] if SLOW.search(block.text) else [])
        for block in examples(langs)
    ]


def shell_commands(text: str) -> list[list[str]]:
    """The commands of a shell block as word lists: continuations joined, comments dropped, split at ``;``/``&&``."""
    text = PLACEHOLDER.sub(RUN_MARK, re.sub(r"\\\n", " ", text))
    commands: list[list[str]] = []
    for line in text.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        words: list[str] = []
        for token in lexer:
            if token in (";", "&&"):
                commands.append(words)
                words = []
            elif set(token) <= set(";&|"):
                raise AssertionError(f"{line!r}: the doc test does not run {token!r}; use `;` or `&&`")
            else:
                words.append(token)
        commands.append(words)
    return [words for words in commands if words]


def visiontasks_args(words: list[str]) -> list[str] | None:
    """The arguments after ``python -m visiontasks`` / ``visiontasks``; ``None`` for another command.

    Under a launcher (``torchrun [options] -m visiontasks``, ``srun [options] python -m visiontasks``) the
    command runs without it, as one process on the CPU (see ``ON_CPU``). Leading environment settings
    (``OMP_NUM_THREADS=1 python -m visiontasks ...``) are for the user's shell; the command runs in-process.
    """
    while len(words) > 1 and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
        words = words[1:]
    if words[0] in LAUNCHERS:
        for i in range(1, len(words)):
            if words[i:i + 2] == ["-m", "visiontasks"] and words[0] == "torchrun":
                return words[i + 2:]
            if words[i] in ("python", "python3", "visiontasks") and words[0] != "torchrun":
                return visiontasks_args(words[i:])
        return None
    if words[:3] in (["python", "-m", "visiontasks"], ["python3", "-m", "visiontasks"]):
        return words[3:]
    if words[0] == "visiontasks":
        return words[1:]
    return None


def options(args: list[str]) -> dict[str, str]:
    """``--key value`` / ``--key=value`` pairs, keys without dashes and with ``init_args`` spelled out."""
    found: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            key, has_value, value = arg[2:].partition("=")
            if not has_value:
                if i + 1 < len(args) and not args[i + 1].startswith("--"):
                    value, i = args[i + 1], i + 1
                else:
                    value = "true"
            for group in ("model", "data"):
                if key.startswith(f"{group}.") and not key.startswith(f"{group}.init_args.") and key != f"{group}.class_path":
                    key = f"{group}.init_args.{key[len(group) + 1:]}"
            found.setdefault(key, value) if key == "config" else found.__setitem__(key, value)
        i += 1
    return found


# --------------------------------------------------------------------------------------------------
# Data at the documented paths, written from the built-in shapes


def _shapes(task: str, num_samples: int = 20, **kwargs: Any):
    from visiontasks import ShapesDataModule

    return ShapesDataModule(task=task, num_samples=num_samples, seed=0, **kwargs)


def make_class_folders(root: Path, task: str = "classification") -> None:
    _shapes(task).export(root)


def make_csvs(files: dict[str, Path], task: str) -> None:
    """``train``/``val``/``test`` CSVs (with box columns for localization) at the given paths, images beside them."""
    folder = files["train"].parent
    assert all(p.parent == folder for p in files.values()), f"doc test: CSVs in several folders {files}"
    _shapes("localization" if task == "localization" else "classification").export(folder)
    for split, path in files.items():
        if path.name != f"{split}.csv":
            (folder / f"{split}.csv").rename(path)


def make_coco(files: dict[str, tuple[Path, Path | None]], task: str) -> None:
    """COCO JSON per split at the given paths; images in the split's image folder (``file_name`` relative to it)."""
    export = Path("_exported_coco")
    if not export.exists():
        kind = "detection" if task == "localization" else task
        _shapes(kind, max_objects=2 if task != "localization" else 3).export(export)
    for split, (json_path, folder) in files.items():
        coco = json.loads((export / f"{split}.json").read_text())
        image_root = folder or json_path.parent
        for image in coco["images"]:
            name = Path(image["file_name"]).name if folder else image["file_name"]
            (image_root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(export / image["file_name"], image_root / name)
            image["file_name"] = name
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(coco))


def make_mask_folder(root: Path, class_names: list[str], images_dir: str, masks_dir: str, mask_suffix: str, unmatched: bool) -> None:
    """Images (JPEG) and palette-PNG index masks with 255 on the object borders, as Pascal VOC ships them."""
    from visiontasks.data.shapes_render import SHAPES

    shapes = list(SHAPES[: max(1, min(len(class_names) - 1, len(SHAPES)))])
    export = _shapes("segmentation", shapes=shapes).export(Path("_exported_masks"))
    (root / images_dir).mkdir(parents=True, exist_ok=True)
    (root / masks_dir).mkdir(parents=True, exist_ok=True)
    palette = [v for i in range(256) for v in ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)]
    for image in sorted((export / "images").rglob("*.png")):
        Image.open(image).convert("RGB").save(root / images_dir / f"{image.stem}.jpg", quality=95)
        mask = np.array(Image.open(export / "masks" / image.relative_to(export / "images")))
        border = np.zeros_like(mask, dtype=bool)
        border[:, 1:] |= mask[:, 1:] != mask[:, :-1]
        border[1:] |= mask[1:] != mask[:-1]
        mask[border] = 255
        indexed = Image.fromarray(mask, mode="L").convert("P")
        indexed.putpalette(palette)
        indexed.save(root / masks_dir / f"{image.stem}{mask_suffix}.png")
    if unmatched:  # JPEGs without a mask, as in VOC
        for n in range(2):
            Image.new("RGB", (50, 40), (30 * n, 80, 120)).save(root / images_dir / f"unlabelled{n}.jpg")


def make_photos(folder: Path, task: str) -> None:
    """A few images to predict on, of two formats and of other sizes than the training images."""
    kind = {"segmentation": "segmentation", "detection": "detection", "instance_segmentation": "detection"}.get(task, "localization")
    source = _shapes(kind, num_samples=3, image_size=64).make_sources()["all"]
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        image = Image.fromarray(source[i]["image"])
        if i == 1:
            image.resize((80, 56)).save(folder / f"photo{i}.jpg")
        else:
            image.save(folder / f"photo{i}.png")


def make_data(data_class: str, opts: dict[str, str], task: str) -> None:
    """Write what a data module reads from the files its options name (nothing for the built-in shapes)."""
    data_class = data_class.rpartition(".")[2]
    get = functools.partial(_option, opts)
    if get("predict_dir"):
        make_photos(Path(get("predict_dir")), task)
    if data_class == "ShapesDataModule":
        return
    if data_class == "ImageFolderDataModule":
        if not Path(get("root")).exists():
            make_class_folders(Path(get("root")))
    elif data_class == "CsvDataModule":
        named = {"train": get("csv_path"), "val": get("val_csv"), "test": get("test_csv")}
        make_csvs({split: Path(p) for split, p in named.items() if p}, task)
    elif data_class == "CocoDataModule":
        task = get("task") or task
        folders = {"train": get("images"), "val": get("val_images"), "test": get("test_images")}
        named = {"train": get("train_json"), "val": get("val_json"), "test": get("test_json")}
        make_coco({s: (Path(p), Path(folders[s] or get("images")) if (folders[s] or get("images")) else None)
                   for s, p in named.items() if p}, task)  # fmt: skip
    elif data_class == "SegmentationFolderDataModule":
        names = get("class_names")
        names = yaml.safe_load(names) if isinstance(names, str) else names
        make_mask_folder(Path(get("root")), list(names), get("images_dir") or "images", get("masks_dir") or "masks",
                         get("mask_suffix") or "", get("unmatched_images") == "skip")  # fmt: skip
    else:
        raise AssertionError(f"doc test: no data maker for {data_class} (add one to tests/test_docs.py)")


def _option(opts: dict[str, Any], name: str) -> Any:
    value = opts.get(f"data.init_args.{name}", opts.get(name))
    return None if value in (None, "null", "None") else value


# --------------------------------------------------------------------------------------------------
# Running shell examples


class DocRun:
    """The state of one example: the doc's other commands (to make the run a placeholder names) and runs made."""

    def __init__(self, example: Example) -> None:
        self.example = example
        self.ran: list[str] = []
        self.notes: list[str] = []

    def config_of(self, opts: dict[str, str]) -> dict:
        path = opts.get("config")
        return yaml.safe_load(Path(path).read_text()) if path else {}

    def experiment_of(self, opts: dict[str, str]) -> str:
        return opts.get("experiment") or Path(opts.get("config", "visiontasks")).stem

    def runs_of(self, experiment: str, runs_dir: str = "runs") -> list[Path]:
        return sorted(p.parent.parent for p in Path(runs_dir).glob(f"{experiment}/*/checkpoints/last.ckpt"))

    def ensure_run(self, experiment: str) -> Path:
        """The newest run of ``experiment``; made first by the doc's own ``fit`` for it when there is none."""
        if not self.runs_of(experiment):
            blocks = [b for b in fenced_blocks(self.example.doc) if b.lang in SHELL]
            blocks.sort(key=lambda b: (b.line > self.example.line, b.line))  # earlier blocks first
            for block in blocks:
                for words in shell_commands(block.text):
                    args = visiontasks_args(words)
                    if args and args[0] == "fit" and RUN_MARK not in " ".join(args):
                        opts = options(args[1:])
                        if "ckpt_path" not in opts and self.experiment_of(opts) == experiment:
                            self.notes.append(f"made a run of {experiment} with {block.id}: {' '.join(words)}")
                            self.visiontasks(args)
                            return self.runs_of(experiment)[-1]
            raise AssertionError(f"{self.example.id}: uses a run of {experiment!r} but no `fit` in the doc makes one")
        return self.runs_of(experiment)[-1]

    def resolve(self, args: list[str]) -> list[str]:
        """``runs/<experiment>/<run id>`` and ``<run>`` to the run an earlier ``fit`` of the doc made."""
        resolved = []
        for arg in args:
            found = re.search(rf"runs/([^/\s]+)/{RUN_MARK}", arg)
            if found:
                arg = arg.replace(f"runs/{found[1]}/{RUN_MARK}", str(self.ensure_run(found[1])))
            elif RUN_MARK in arg:
                arg = arg.replace(RUN_MARK, str(self.ensure_run(self.experiment_of(options(args[1:])))))
            resolved.append(arg)
        return resolved

    def shortening(self, args: list[str], opts: dict[str, str], config: dict) -> list[str]:
        """Arguments appended to a command: few small samples, one epoch, few batches, small detector inputs, CPU."""
        if args[0] not in SUBCOMMANDS:
            return []
        data_class = opts.get("data", opts.get("data.class_path", config.get("data", {}).get("class_path", "")))
        short = ["--data.init_args.batch_size=4", "--data.init_args.num_workers=0",
                 "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1",
                 "--trainer.limit_test_batches=1", "--trainer.limit_predict_batches=2"]  # fmt: skip
        if data_class.endswith("ShapesDataModule"):
            short.append("--data.init_args.num_samples=24")
        if args[0] in ("fit", "cv"):  # a resumed fit trains one more epoch
            short.append(f"--trainer.max_epochs={2 if 'ckpt_path' in opts else 1}")
        if args[0] == "tune":  # a study of two one-epoch trials (each trial's fit gets the arguments above)
            short += ["--trials=2", "--trainer.max_epochs=1"]
        for key, value in opts.items():  # images of at most 64 px, the size of the shapes; a detector's input too
            if key.startswith("model.") and key.rpartition(".")[2] in ("min_size", "max_size"):
                short.append(f"--{key}=64")
            if key == "data.init_args.image_size" and max(np.ravel(yaml.safe_load(value) or 0)) > 64:
                short.append(f"--{key}=64")
        for key, value in ON_CPU.items():
            if key in opts and opts[key] != value:
                self.notes.append(f"--{key} {opts[key]} replaced by {value} (no GPU here)")
                short.append(f"--{key}={value}")
        return short

    def visiontasks(self, args: list[str]) -> Any:
        args = self.resolve(args)
        opts = options(args[1:]) if args and args[0] in SUBCOMMANDS else {}
        config = self.config_of(opts)
        config_data = config.get("data", {})
        task = opts.get("data.init_args.task") or config_data.get("init_args", {}).get("task", "classification")
        if args and args[0] in SUBCOMMANDS:
            make_data(opts.get("data", config_data.get("class_path", "ShapesDataModule")), opts, task)
            if opts.get("ckpt_path") in ("best", "last"):
                self.ensure_run(self.experiment_of(opts))
        full = [*args, *self.shortening(args, opts, config)]
        self.ran.append(" ".join(full))
        try:
            cli = run_cli(*full)
        except SystemExit as exit_info:
            assert exit_info.code in (0, None), f"`visiontasks {' '.join(full)}` exited with {exit_info.code}"
            return None
        if args[0] == "predict":  # the predictions are written, in the run's predict/<time>/ folder
            written = [p.name for p in cli.run.stage_dir.iterdir()]
            assert set(written) - {"config.yaml"}, f"predict wrote nothing into {cli.run.stage_dir}"
        if args[0] == "export":  # the model file and its JSON, in the run's export/ folder (or --output)
            output = Path(opts.get("output") or cli.run.stage_dir / "model.onnx")
            assert output.parent.is_dir() and output.with_suffix(".json").is_file(), f"export wrote no {output.with_suffix('.json')}"
        return cli

    def pip(self, words: list[str]) -> None:
        """Not run: every extra it names exists, and the package it names is this one."""
        tomllib = pytest.importorskip("tomllib")  # Python 3.11+
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        assert words[1] == "install", words
        for word in words[2:]:
            if word.startswith("-"):
                continue
            name, _, extras = re.match(r"([^\[]*)(\[(.*)\])?$", word).groups()[0:3]
            assert name in (".", project["name"]), f"pip installs {name!r}, not this project"
            for extra in filter(None, (extras or "").split(",")):
                assert extra.strip() in project.get("optional-dependencies", {}), f"pyproject.toml has no extra {extra!r}"
        self.notes.append(f"not run, extras checked: {' '.join(words)}")


@pytest.fixture(autouse=True)
def _repo_files(tmp_path):
    """The examples run from the repository root: its configs, in a folder of their own."""
    (tmp_path / "configs").symlink_to(ROOT / "configs")


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch, tmp_path_factory):
    """torchvision's pretrained weights come from a local ``$TORCH_HOME`` holding random weights of the architecture."""
    from torchvision.models._api import WeightsEnum

    home = tmp_path_factory.getbasetemp() / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    original = WeightsEnum.get_state_dict

    def placed_by_hand(self, *args, **kwargs):
        target = home / "hub" / "checkpoints" / Path(self.url).name
        if not target.is_file():
            import torch
            import torchvision

            builder = next(n for n in torchvision.models.list_models() if torchvision.models.get_model_weights(n) is type(self))
            extra = {"num_classes": len(self.meta["categories"])} if self.meta.get("categories") else {}
            try:
                model = torchvision.models.get_model(builder, weights=None, weights_backbone=None, **extra)
            except TypeError:
                model = torchvision.models.get_model(builder, weights=None, **extra)
            target.parent.mkdir(parents=True, exist_ok=True)
            torch.save(model.state_dict(), target)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(WeightsEnum, "get_state_dict", placed_by_hand)


@pytest.mark.parametrize("example", params(SHELL))
def test_shell_example(example: Example, capsys):
    doc_run = DocRun(example)
    for words in shell_commands(example.text):
        args = visiontasks_args(words)
        if args is not None:
            doc_run.visiontasks(args)
        elif words[0] == "pip":
            doc_run.pip(words)
        elif words[0] in NOT_RUN:
            doc_run.notes.append(f"not run ({NOT_RUN[words[0]]}): {' '.join(words)}")
        else:
            raise AssertionError(f"{example.id}: the doc test does not know how to run {' '.join(words)!r}")
    print("\n".join([*doc_run.ran, *doc_run.notes]))
    if not doc_run.ran:
        pytest.skip("; ".join(doc_run.notes))


# --------------------------------------------------------------------------------------------------
# Python examples


def shortened_trainer(monkeypatch) -> None:
    """``pytorch_lightning.Trainer`` with one epoch of a few batches on the CPU, whatever the example asks."""
    import pytorch_lightning as pl

    class Trainer(pl.Trainer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.update(max_epochs=1, limit_train_batches=2, limit_val_batches=1, limit_test_batches=1,
                          limit_predict_batches=2, enable_progress_bar=False, enable_model_summary=False,
                          accelerator="cpu", devices=1)  # fmt: skip
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(pl, "Trainer", Trainer)


def few_shapes(monkeypatch) -> None:
    """``ShapesDataModule`` with at most 24 samples and no worker processes."""
    from visiontasks import ShapesDataModule

    original = ShapesDataModule.__init__

    @functools.wraps(original)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["num_samples"] = min(kwargs.get("num_samples", 24), 24)
        kwargs["num_workers"] = 0
        original(self, *args, **kwargs)

    monkeypatch.setattr(ShapesDataModule, "__init__", __init__)


def small_detector_inputs(monkeypatch) -> None:
    """torchvision's detectors resize their input to at most 64 px (the size of the shapes), as the CLI examples get."""
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    original = GeneralizedRCNNTransform.__init__

    @functools.wraps(original)
    def __init__(self, min_size: Any, max_size: int, *args: Any, **kwargs: Any) -> None:
        original(self, 64, 64, *args, **kwargs)

    monkeypatch.setattr(GeneralizedRCNNTransform, "__init__", __init__)


def files_read_by(code: str) -> None:
    """Write what the example reads: the data its data modules name, and image files it names."""
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            kwargs = {k.arg: k.value.value for k in node.keywords if k.arg and isinstance(k.value, ast.Constant)}
            if name.endswith("DataModule") and name != "ShapesDataModule":
                make_data(name, {f"data.init_args.{k}": v for k, v in kwargs.items()}, kwargs.get("task", "classification"))
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if re.fullmatch(r"[\w./-]+\.(jpe?g|png)", node.value) and not Path(node.value).exists():
                make_photos(Path("_photo"), "classification")
                Path(node.value).parent.mkdir(parents=True, exist_ok=True)
                Image.open(Path("_photo/photo0.png")).save(node.value)


@pytest.mark.parametrize("example", params(PYTHON))
def test_python_example(example: Example, monkeypatch):
    shortened_trainer(monkeypatch)
    few_shapes(monkeypatch)
    small_detector_inputs(monkeypatch)
    code = example.text
    if PLACEHOLDER.search(code):  # a run made by the doc's `fit`
        doc_run = DocRun(example)
        code = re.sub(r"runs/([^/\s]+)/<run(?: id)?>", lambda m: str(doc_run.ensure_run(m[1])), code)
    files_read_by(code)
    namespace = {"__name__": "__doc_example__"}
    exec(compile(code, example.id, "exec"), namespace)  # noqa: S102 - the documented example itself


# --------------------------------------------------------------------------------------------------
# YAML config fragments


def _contains(printed: Any, fragment: Any) -> bool:
    """``fragment`` is in ``printed``; a class path may come back as its full import path."""
    if isinstance(fragment, dict):
        return isinstance(printed, dict) and all(
            k in printed and _contains(printed[k], v) for k, v in fragment.items()
        )
    if isinstance(fragment, list):
        return isinstance(printed, list) and len(printed) == len(fragment) and all(map(_contains, printed, fragment))
    if isinstance(fragment, str) and isinstance(printed, str):
        return printed == fragment or printed.endswith(f".{fragment}")
    return printed == fragment


@pytest.mark.parametrize("example", params(YAML))
def test_yaml_fragment(example: Example, capsys):
    fragment = yaml.safe_load(example.text)
    sections = {"seed_everything", "model", "data", "trainer", "ckpt_path", "optimizer", "lr_scheduler"}
    if not isinstance(fragment, dict) or not set(fragment) <= sections:
        pytest.skip("not a config fragment")
    named = re.findall(r"configs/[\w.-]+\.yaml", example.doc.read_text())
    base = named[0] if named else "configs/classification.yaml"
    Path("fragment.yaml").write_text(example.text)
    with pytest.raises(SystemExit) as exit_info:
        run_cli("fit", "--config", base, "--config", "fragment.yaml", "--print_config")
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert _contains(printed, fragment), f"{example.id} merged into {base} does not come back in --print_config"


def test_examples_are_found():
    """The parser finds the docs' examples (a broken fence would silently drop them)."""
    found = examples(SHELL | PYTHON | YAML)
    assert len(found) >= 20 and {e.doc.name for e in found} >= {"README.md", "segmentation.md", "detection.md"}
    assert all(shell_commands(e.text) for e in examples(SHELL))
