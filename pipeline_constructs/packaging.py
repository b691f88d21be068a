"""Lambda packages built at synth time, reproducibly: same inputs, same bytes, same hash.

No manual zip step: the function package is the `handlers/` package zipped as is, and the
shared layer is built from the pinned `handlers/requirements.txt` for the target platform
and Python. Zip entries are sorted, dated 1980-01-01 and given fixed permissions, and no
bytecode is compiled, so the archive hash changes only when an input does (the builder's
Python counts as one: its zlib compresses). The layer keeps only what the wheels put on the
import path: pip's console scripts name the building virtualenv in their shebang and its
install record hashes them, so both differed from one checkout to another
(tests/infra/test_reproducible_packages.py builds in two).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_SKIPPED_NAMES = {"__pycache__", ".pytest_cache", ".mypy_cache", ".DS_Store"}
_SKIPPED_SUFFIXES = (".pyc", ".pyo")
# Parts of pyarrow nothing the handlers import can load: C++ headers, Cython sources,
# tests, and Arrow Flight (~35 MB). Every other pyarrow library links libarrow_substrait,
# so that one stays; tests/infra/test_compute.py imports the built layer to prove it.
_LAYER_PRUNE_GLOBS = (
    "python/pyarrow/include",
    "python/pyarrow/src",
    "python/pyarrow/tests",
    "python/pyarrow/**/*.pyx",
    "python/pyarrow/**/*.pxd",
    "python/pyarrow/libarrow_flight.so*",
    "python/pyarrow/libarrow_python_flight.so*",
    "python/pyarrow/_flight*.so",
    "python/pyarrow/_pyarrow_cpp_tests*.so",
)
# What pip writes about the install rather than the package: RECORD lists (and hashes) the
# console scripts, INSTALLER and REQUESTED name the tool and the request, direct_url.json the
# place a wheel came from. METADATA, WHEEL, entry points and licences come from the wheel.
_INSTALL_RECORDS = ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")
LAYER_BUILDER_VERSION = "4"


@dataclass(frozen=True, kw_only=True)
class Package:
    path: Path
    sha256: str

    @property
    def short_hash(self) -> str:
        return self.sha256[:12]


@dataclass(frozen=True, kw_only=True)
class LayerTarget:
    """Where the layer's compiled wheels must run."""

    pip_platforms: tuple[str, ...]
    python_version: str  # "3.13"

    @classmethod
    def lambda_arm64(cls, runtime: str) -> LayerTarget:
        return cls(
            pip_platforms=("manylinux_2_28_aarch64", "manylinux2014_aarch64"),
            python_version=runtime.removeprefix("python"),
        )

    @classmethod
    def this_host(cls) -> LayerTarget:
        """For the local emulator, which runs handlers with this machine's Python."""
        machine = os.uname().machine
        return cls(
            pip_platforms=(f"manylinux_2_28_{machine}", f"manylinux2014_{machine}"),
            python_version=f"{sys.version_info.major}.{sys.version_info.minor}",
        )

    @property
    def key(self) -> str:
        return f"py{self.python_version}-{self.pip_platforms[0]}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _included_files(root: Path) -> list[Path]:
    files = []
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIPPED_NAMES)
        for filename in filenames:
            if filename in _SKIPPED_NAMES or filename.endswith(_SKIPPED_SUFFIXES):
                continue
            files.append(Path(directory, filename))
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def deterministic_zip(*, source: Path, destination: Path, prefix: str = "") -> Package:
    """Zip `source`'s contents under `prefix` so that equal trees give equal bytes."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f"{destination.name}.{os.getpid()}.partial")  # concurrent builds
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for file in _included_files(source):
            arcname = prefix + file.relative_to(source).as_posix()
            info = zipfile.ZipInfo(arcname, date_time=_FIXED_DATE)
            info.create_system = 3  # Unix, whose modes external_attr carries, wherever this runs
            # Any execute bit (a umask clears some), not os.access, whose answer depends on who builds.
            executable = file.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, file.read_bytes(), compresslevel=6)
    partial.replace(destination)
    return Package(path=destination, sha256=sha256_file(destination))


def package_functions(*, sources: tuple[Path, ...], build_dir: Path) -> Package:
    """The function package: each source directory as an importable package of the same name."""
    with tempfile.TemporaryDirectory(prefix="functions-") as scratch:
        for source in sources:
            shutil.copytree(source, Path(scratch, source.name), ignore=shutil.ignore_patterns(*_SKIPPED_NAMES, "*.pyc"))
        return deterministic_zip(source=Path(scratch), destination=build_dir / "functions" / "handlers.zip")


def build_layer(*, requirements: Path, target: LayerTarget, build_dir: Path) -> Package:
    """Build (or reuse) the dependency layer for `target` from a pinned requirements file.

    The cache key covers the requirements' bytes, the target and this builder's version,
    so a rebuild happens only when one of them changes.
    """
    key_material = f"{LAYER_BUILDER_VERSION}\n{target.key}\n".encode() + requirements.read_bytes()
    key = hashlib.sha256(key_material).hexdigest()[:16]
    destination = build_dir / "layers" / f"deps-{target.key}-{key}.zip"
    if destination.exists():
        return Package(path=destination, sha256=sha256_file(destination))
    with tempfile.TemporaryDirectory(prefix="layer-") as scratch:
        site = Path(scratch, "python")
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--no-deps",
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            target.python_version,
            "--target",
            str(site),
            "--requirement",
            str(requirements),
        ]
        for platform in target.pip_platforms:
            command += ["--platform", platform]
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - pip, fixed arguments
        if result.returncode != 0:
            raise RuntimeError(
                f"building the Lambda layer from {requirements} for {target.key} failed:\n{result.stderr}"
            )
        _keep_importable_only(site)
        for pattern in _LAYER_PRUNE_GLOBS:
            for path in Path(scratch).glob(pattern):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        built = deterministic_zip(
            source=Path(scratch), destination=destination.with_name(f"{destination.name}.{os.getpid()}")
        )
        # The first build to finish is the layer: a concurrent one (two environments synthesized
        # at once share build/) must not replace a file another synthesis has already hashed.
        with contextlib.suppress(FileExistsError):
            os.link(built.path, destination)
        built.path.unlink()
        return Package(path=destination, sha256=sha256_file(destination))


def _keep_importable_only(site: Path) -> None:
    """Remove what pip installed beside the import path, and its records of the install.

    With --target, pip moves a wheel's scripts, headers and data into the target too (bin/,
    include/, ...); each RECORD lists them as paths leaving the library directory ("../../bin/f2py").
    The directories left empty need no removal: the zip holds files only.
    """
    for record in sorted(site.glob("*.dist-info/RECORD")):
        for row in csv.reader(record.read_text(encoding="utf-8").splitlines()):
            parts = Path(row[0]).parts if row else ()
            if parts[:1] != ("..",):
                continue
            outside = site.joinpath(*(p for p in parts if p != ".."))
            if outside.is_file() or outside.is_symlink():
                outside.unlink()
    for dist_info in site.glob("*.dist-info"):
        for name in _INSTALL_RECORDS:
            dist_info.joinpath(name).unlink(missing_ok=True)
