"""The command as installed: --version, python -m veriloss, missing extras in one line, --data-root."""

from __future__ import annotations

import builtins
import subprocess
import sys

import pytest

import veriloss
from veriloss.cli import main
from veriloss.data import with_data_root
from veriloss.train.config import load_config


def test_version_and_python_dash_m(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"veriloss {veriloss.__version__}"
    out = subprocess.run([sys.executable, "-m", "veriloss", "losses", "cosface"], capture_output=True, text=True)
    assert out.returncode == 0 and "cosface" in out.stdout


def test_a_missing_optional_package_is_one_line_naming_the_extra(monkeypatch, tmp_path, capsys):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.split(".")[0] == "matplotlib":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    import numpy as np

    np.save(tmp_path / "e.npy", np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32))
    np.save(tmp_path / "e.labels.npy", np.array([0, 0, 1, 1, 2, 2]))
    plotting = ("matplotlib", "veriloss.report.plots", "veriloss.report.hist")
    for name in [m for m in sys.modules if m.startswith(plotting)]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    args = ["eval", "embeddings", str(tmp_path / "e.npy"), "--protocol", "all-pairs", "--out", str(tmp_path / "r")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "veriloss eval: error: this needs the package 'matplotlib', which is not installed: "
        "pip install 'veriloss[reports]'"
    )
    assert main([*args, "--no-plots"]) == 0  # without plots it needs no matplotlib


def test_relative_data_paths_start_from_the_data_root(tmp_path):
    (tmp_path / "omniglot").mkdir()
    config = load_config("omniglot_arcface", data_root=tmp_path)
    assert config["data"]["root"] == str(tmp_path / "omniglot")
    assert load_config("omniglot_arcface")["data"]["root"] == "omniglot"  # unset: relative to the current folder
    absolute = with_data_root({"name": "omniglot", "root": "/data/x"}, tmp_path)
    assert absolute["root"] == "/data/x"
    folder = with_data_root({"name": "image-folder", "train_root": "a", "test_root": "b", "image_size": 8}, "/d")
    assert (folder["train_root"], folder["test_root"], folder["image_size"]) == ("/d/a", "/d/b", 8)
    with pytest.raises(ValueError, match=r"data root '.*nope' is not a folder \(--data-root or \$VERILOSS_DATA\)"):
        load_config("omniglot_arcface", data_root=tmp_path / "nope")


def test_the_data_root_comes_from_the_command_line_or_the_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VERILOSS_DATA", str(tmp_path / "missing"))
    out = tmp_path / "run"
    assert main(["train", "omniglot_arcface", "--out", str(out), "--set", "max_steps=1"]) == 2
    assert f"the data root {str(tmp_path / 'missing')!r} is not a folder" in capsys.readouterr().err
    monkeypatch.delenv("VERILOSS_DATA")
    assert main(["train", "omniglot_arcface", "--out", str(out), "--set", "max_steps=1"]) == 2
    err = capsys.readouterr().err
    assert "data.root = 'omniglot' does not exist" in err and "--data-root" in err
