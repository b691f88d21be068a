"""Two checkouts of one commit build the same Lambda packages, byte for byte (README, "Deploying to AWS").

Each checkout is a fresh directory holding what synthesis reads (`handlers/`, `lake/`,
`pipeline_constructs/`) and a `.venv` link to this test's environment, so the interpreter,
the requirements file, the sources and the build directory all have another path, as in a
second clone. The second checkout also builds under another umask, with its sources dated
otherwise and another SOURCE_DATE_EPOCH and time zone. Both build with empty build
directories, so no cached layer is reused; pip's download cache keeps the builds quick.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

# One worker builds once for all three tests (under `--dist loadgroup` an ungrouped module's
# tests may each land on another worker, and each would build again).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reproducible-packages")]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COPIED = ("handlers", "lake", "pipeline_constructs")
# The README's deploy target: arm64 Lambda on the default runtime.
_BUILD = """
from pathlib import Path

from pipeline_constructs import packaging

checkout = Path.cwd()
assert Path(packaging.__file__).is_relative_to(checkout), packaging.__file__
layer = packaging.build_layer(
    requirements=checkout / "handlers" / "requirements.txt",
    target=packaging.LayerTarget.lambda_arm64("python3.13"),
    build_dir=checkout / "build",
)
code = packaging.package_functions(sources=(checkout / "handlers", checkout / "lake"), build_dir=checkout / "build")
print(layer.path)
print(code.path)
"""
_INSTALLER_FILES = ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")


@dataclass(frozen=True)
class Build:
    checkout: Path
    layer: Path
    code: Path

    @property
    def packages(self) -> tuple[Path, Path]:
        return self.layer, self.code


def _checkout(root: Path, *, umask: int, mtime: int) -> Path:
    for name in COPIED:
        shutil.copytree(PROJECT_ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for directory, _, filenames in os.walk(root):
        for path in (Path(directory, f) for f in filenames):
            # As git would have written them under this umask, at this moment.
            path.chmod(path.stat().st_mode & 0o777 & ~umask)
            os.utime(path, (mtime, mtime))
    (root / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    (root / "tmp").mkdir()
    return root


def _start(checkout: Path, *, umask: int, epoch: int, tz: str) -> subprocess.Popen[str]:
    python = checkout / ".venv" / "bin" / Path(sys.executable).name
    env = {
        **os.environ,
        "PYTHONPATH": str(checkout),
        "TMPDIR": str(checkout / "tmp"),  # pip's and the builder's scratch, inside the checkout
        "SOURCE_DATE_EPOCH": str(epoch),
        "TZ": tz,
    }
    return subprocess.Popen(
        [str(python), "-c", _BUILD], cwd=checkout, env=env, umask=umask, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Build, Build]:
    root = tmp_path_factory.mktemp("checkouts")
    settings = (
        (root / "a", dict(umask=0o022, mtime=1_700_000_000), dict(epoch=1_700_000_000, tz="UTC")),
        (
            root / "a-second-clone-of-the-same-commit-somewhere-else",
            dict(umask=0o077, mtime=1_760_000_000),
            dict(epoch=1_760_000_000, tz="Pacific/Kiritimati"),
        ),
    )
    started = []
    for path, checkout_settings, clock in settings:
        checkout = _checkout(path, **checkout_settings)
        started.append((checkout, _start(checkout, umask=checkout_settings["umask"], **clock)))
    built = []
    for checkout, process in started:  # both at once: the builds are independent
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, f"building the packages in {checkout} failed:\n{err}"
        layer, code = out.splitlines()
        built.append(Build(checkout=checkout, layer=Path(layer), code=Path(code)))
    return built[0], built[1]


def _differences(first: Path, second: Path) -> list[str]:
    with zipfile.ZipFile(first) as a, zipfile.ZipFile(second) as b:
        if a.namelist() != b.namelist():
            return sorted(set(a.namelist()) ^ set(b.namelist()))
        return [
            info.filename
            for info in a.infolist()
            if a.read(info) != b.read(info.filename) or info.external_attr != b.getinfo(info.filename).external_attr
        ]


def test_two_checkouts_build_byte_identical_packages(builds: tuple[Build, Build]) -> None:
    first, second = builds
    for mine, theirs in zip(first.packages, second.packages, strict=True):
        assert mine.name == theirs.name  # the layer's cache key does not see the checkout either
        assert mine.read_bytes() == theirs.read_bytes(), f"{mine.name} differs in: {_differences(mine, theirs)[:20]}"


def _machine_paths(build: Build) -> dict[str, tuple[bytes, re.Pattern[bytes] | None]]:
    """What would name this build's place: the checkout, its scratch, the virtualenv, the home.

    Each as a literal to find quickly and, where the literal alone is too common, the pattern
    a real mention matches.
    """
    paths = {
        "checkout": build.checkout,
        "checkout's real path": build.checkout.resolve(),
        "virtualenv": Path(sys.prefix),
        "virtualenv's real path": Path(sys.prefix).resolve(),
        "project": PROJECT_ROOT,
    }
    needles: dict[str, tuple[bytes, re.Pattern[bytes] | None]] = {
        name: (os.fsencode(path), None) for name, path in paths.items()
    }
    home = os.fsencode(Path.home())
    if home != b"/":
        # A path under the home, not a longer name ending like it (".../gcc-toolset-14/root/usr"), nor
        # the crate sources a Rust extension names from its upstream build as root (pydantic_core's
        # "/root/.cargo/registry/src/..."): those are in the published wheel, the same on every machine.
        needles["home"] = (
            home + b"/",
            re.compile(rb"(?<![\w.~/-])" + re.escape(home) + rb"/(?!\.cargo/registry/|\.rustup/)"),
        )
    return needles


def test_no_package_names_the_build_machine(builds: tuple[Build, Build]) -> None:
    build = builds[1]  # one is enough: the other checkout's packages are the same bytes (test above)
    needles = _machine_paths(build)
    for package in build.packages:
        leaks = []
        with zipfile.ZipFile(package) as archive:
            for info in archive.infolist():
                content = archive.read(info)
                for name, (literal, pattern) in needles.items():
                    for text in (content, os.fsencode(info.filename)):
                        if literal in text and (pattern is None or pattern.search(text)):
                            leaks.append(f"{info.filename} names the {name}")
        assert not leaks, f"{package.name}: {leaks[:20]}"


def test_the_layer_holds_only_what_the_functions_import(builds: tuple[Build, Build]) -> None:
    with zipfile.ZipFile(builds[1].layer) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert not [n for n in names if n.startswith("python/bin/")], "pip's console scripts are not imported"
    installer = [n for n in names if ".dist-info/" in n and n.rsplit("/", 1)[1] in _INSTALLER_FILES]
    assert not installer, f"pip's records of the install: {installer[:10]}"
    distributions = {n.split("/")[1] for n in names if ".dist-info/" in n}
    assert distributions, "the distributions' metadata stays: importlib.metadata reads it"
    assert all(f"python/{d}/METADATA" in names for d in distributions)
    # Built under umask 077: modes are the archive's own, not the checkout's.
    assert {info.external_attr >> 16 for info in infos} <= {0o100644, 0o100755}
    assert {info.create_system for info in infos} == {3}
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert not [n for n in names if n.endswith("/")], "no directory entries"
