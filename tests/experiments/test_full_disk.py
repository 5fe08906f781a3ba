"""A full disk: one line naming the folder and the fix, exit 1, and a folder that resumes to
the metrics of a run never interrupted."""

from __future__ import annotations

import collections
import errno
import shutil

import pytest

import experiments  # noqa: F401  (registers the entries)
from experiments.core import checkpoints, files
from experiments.run import main
from tests.helpers.runs import metrics_without_timing, sets

TINY = sets("epochs=2", "max_train_batches=3", "num_steps=4", "eval_every=1", "analyses=none")


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "run"
    assert main(["digits_bntt", *TINY, "--out", str(out)]) == 0
    return metrics_without_timing(out)


class _FullWriter:
    """The checkpoint writer on a disk that fills while it writes: the error it raises there
    (its message, as orbax's tensorstore gives it)."""

    def save(self, target, args):
        raise ValueError(
            f'RESOURCE_EXHAUSTED: Error writing "params.fc1.kernel/0.0" in OCDBT database at '
            f'local file "{target}": Failed to write 235864 bytes to file 16: No space left on '
            "device [os_error_code='28']"
        )


@pytest.mark.e2e  # whole runs, failed and resumed
@pytest.mark.parametrize("where", ["before the write", "inside the writer"])
def test_a_full_disk_says_so_in_one_line_and_the_run_resumes(where, whole, tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.MonkeyPatch.context() as m:
        if where == "before the write":  # the disk has 1 kB left: refused before writing
            usage = collections.namedtuple("usage", "total used free")
            m.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
        else:
            m.setattr(checkpoints, "_checkpointer", _FullWriter)
        assert main(["digits_bntt", *TINY, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"error: no space left on {out}")
    if where == "before the write":
        assert "checkpoints/best: the checkpoint 'best/1' needs about " in err
        assert "MB and 0.0 MB are free there" in err
    assert err.endswith(f"free space there, then python -m experiments.run --resume --out {out}")
    assert main(["--resume", "--out", str(out)]) == 0
    assert metrics_without_timing(out) == whole


def test_a_full_disk_is_found_in_any_error_that_wraps_it():
    assert files.no_space(OSError(errno.ENOSPC, "No space left on device"))
    assert files.no_space(ValueError("Failed writing: No space left on device [os_error_code]"))
    try:
        try:
            raise OSError(errno.ENOSPC, "disk full")
        except OSError as inner:
            raise RuntimeError("the save failed") from inner
    except RuntimeError as outer:
        assert files.no_space(outer)
    assert not files.no_space(OSError(errno.EACCES, "Permission denied"))
    assert not files.no_space(ValueError("RESOURCE_EXHAUSTED: out of memory"))
