"""Real places that refuse writes, for the save-failure tests: a read-only folder and a small
disk that fills up.

As a normal user a read-only folder is ``chmod 0555``. Root ignores permission bits, so as
root the folder is a real tmpfs mount, switched between ``ro`` and ``rw`` with ``mount -o
remount``; that also gives a disk of a chosen size. Where root may not mount (a container
without CAP_SYS_ADMIN) the tests that need it are skipped with the reason. A file-size limit
(``RLIMIT_FSIZE``, see ``test_session_save_failures``) needs no privilege at all.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _mount(*args: str) -> bool:
    if shutil.which("mount") is None:
        return False
    p = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)
    return p.returncode == 0


class Folder:
    """A folder that can be made read-only and back (see the module docstring)."""

    def __init__(self, path: Path, size_kb: int | None) -> None:
        self.path = path
        self.mounted = False
        path.mkdir(parents=True, exist_ok=True)
        if IS_ROOT or size_kb is not None:
            size = f"size={size_kb or 4096}k"
            if not IS_ROOT or not _mount("-t", "tmpfs", "-o", f"{size},mode=0755", "tmpfs",
                                         str(path)):  # fmt: skip
                pytest.skip("needs a tmpfs mount (root with CAP_SYS_ADMIN) for this folder")
            self.mounted = True

    def read_only(self) -> None:
        if self.mounted:
            assert _mount("-o", "remount,ro", str(self.path)), "remount ro failed"
        else:
            self.path.chmod(0o555)

    def writable(self) -> None:
        if self.mounted:
            assert _mount("-o", "remount,rw", str(self.path)), "remount rw failed"
        else:
            self.path.chmod(0o755)

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True, timeout=30)
            self.mounted = False
        else:
            with contextlib.suppress(OSError):
                self.path.chmod(0o755)


@contextlib.contextmanager
def unwritable_folder(path: Path, size_kb: int | None = None):
    """Yield a :class:`Folder` at ``path``; ``size_kb`` makes it a small disk (tmpfs, root)."""
    folder = Folder(path, size_kb)
    try:
        yield folder
    finally:
        folder.close()
