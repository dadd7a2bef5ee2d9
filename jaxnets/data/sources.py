"""Where the IDX datasets live: search directories, canonical URLs, SHA-256 checksums, verified download.

Lookup order for dataset `<name>` ("mnist" or "fashion-mnist"): `data_dir` if given, `$JAXNETS_DATA/<name>`,
`$JAXNETS_DATA`, then `<root>/<name>` for every root of the data search path. The search path is
`$JAXNETS_DATA_PATH` (directories separated by `os.pathsep`, ":" on Linux) when that variable is set, else
`~/.cache/jaxnets:/usr/share/datasets` (the download cache, then Debian's `dataset-fashion-mnist`). Setting
`JAXNETS_DATA_PATH` to an empty directory hides every installed copy: CI runs the tests that way, so that no test
can depend on a dataset installed by hand. A directory qualifies when it holds all four files, each raw or
gzip-compressed. Failing that, the gzip files are downloaded into `<first root>/<name>`
(`~/.cache/jaxnets/<name>` by default), each checked against the SHA-256 below before it is renamed into
place.

Checksum provenance (SHA-256 of the distributed `.gz` files):
- MNIST: the values published alongside the LeCun/ossci-datasets/cvdf mirrors by several independent
  projects (a torchvision port for Ruby that downloads from ossci-datasets.s3.amazonaws.com, TFDS-style
  checksum lists, and others), all agreeing. Not recomputed here: these machines have no network.
- Fashion-MNIST: recomputed locally. Debian's copies have rewritten gzip headers (no file name, normalised
  mtime) around the unchanged deflate streams; putting back the original header (file name plus the
  2017-08-31 mtime) gives files whose MD5 equals the official values in Fashion-MNIST's README, and whose
  SHA-256 are the values below, which also agree with those published by other projects.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import urllib.request

ROLES = ("train_images", "train_labels", "test_images", "test_labels")
FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

BASE_URLS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}

# SHA-256 of "<file name>.gz" as served from BASE_URLS[name]; see the module docstring for the sources.
SHA256 = {
    "mnist": {
        "train_images": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train_labels": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "test_images": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "test_labels": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion-mnist": {
        "train_images": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train_labels": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "test_images": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "test_labels": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}

SYSTEM_DIR = "/usr/share/datasets"
PATH_VARIABLE = "JAXNETS_DATA_PATH"
# Replaced in tests to serve bytes without a network.
_urlopen = urllib.request.urlopen


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files are in none of the searched directories and could not be downloaded."""


class ChecksumError(ValueError):
    """A downloaded file's SHA-256 differs from the expected value."""


def search_roots() -> list[str]:
    """The data search path: `$JAXNETS_DATA_PATH` split on `os.pathsep` (empty entries dropped) when the
    variable is set, else [`~/.cache/jaxnets`, `/usr/share/datasets`]."""
    value = os.environ.get(PATH_VARIABLE)
    if value is None:
        return [os.path.join(os.path.expanduser("~"), ".cache", "jaxnets"), SYSTEM_DIR]
    return [os.path.expanduser(p) for p in value.split(os.pathsep) if p]


def cache_dir(name: str) -> str:
    """`<first root of the search path>/<name>` (`~/.cache/jaxnets/<name>` by default), where downloads go."""
    roots = search_roots()
    root = roots[0] if roots else os.path.join(os.path.expanduser("~"), ".cache", "jaxnets")
    return os.path.join(root, name)


def search_dirs(name: str, data_dir: str | os.PathLike | None = None) -> list[str]:
    """The directories searched for dataset `name`, in order (duplicates removed)."""
    dirs = []
    if data_dir is not None:
        dirs.append(os.fspath(data_dir))
    env = os.environ.get("JAXNETS_DATA")
    if env:
        dirs += [os.path.join(env, name), env]
    dirs += [os.path.join(root, name) for root in search_roots()]
    return list(dict.fromkeys(dirs))


def files_in(directory: str) -> dict[str, str] | None:
    """Paths of the four files in `directory` (raw preferred over `.gz`), or None if any is missing."""
    found = {}
    for role, base in FILE_NAMES.items():
        for candidate in (base, base + ".gz"):
            path = os.path.join(directory, candidate)
            if os.path.isfile(path):
                found[role] = path
                break
        else:
            return None
    return found


def locate(name: str, data_dir=None) -> tuple[dict[str, str] | None, list[str]]:
    """(paths of the first complete directory or None, the directories searched)."""
    dirs = search_dirs(name, data_dir)
    for directory in dirs:
        files = files_in(directory)
        if files is not None:
            return files, dirs
    return None, dirs


def not_found_message(name: str, dirs: list[str], reason: str) -> str:
    listing = "\n".join(f"  - {d}" for d in dirs)
    files = ", ".join(f"{b}[.gz]" for b in FILE_NAMES.values())
    hint = "  - install Debian's package: apt-get install dataset-fashion-mnist\n" if name == "fashion-mnist" else ""
    return (
        f"dataset {name!r}: the IDX files ({files}) are in none of these directories:\n{listing}\n"
        f"and the download from {BASE_URLS[name]} failed: {reason}\n"
        f"To fix it, either\n{hint}"
        f"  - copy the four files into a directory and set JAXNETS_DATA=/that/dir (or pass data_dir=...), or\n"
        f"  - check {PATH_VARIABLE} (now {os.environ.get(PATH_VARIABLE, 'unset')!r}), which replaces the default "
        f"search path, or\n"
        f"  - run once where the network is reachable (files are cached in {cache_dir(name)})."
    )


def fetch(url: str, dest: str, sha256: str, *, timeout: float = 60.0) -> str:
    """Download `url` to `dest`, atomically and only if its SHA-256 equals `sha256`.

    The bytes go to a temporary file in dest's directory, are hashed while written, fsynced, and renamed onto
    `dest` only after the checksum matches. On a mismatch or any error the temporary file is removed; a
    mismatch raises ChecksumError.
    """
    directory = os.path.dirname(dest) or "."
    with _urlopen(url, timeout=timeout) as response:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(dest)}.", suffix=".part", dir=directory)
        try:
            _copy_verified(response, fd, tmp, url, sha256)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    return dest


def _copy_verified(response, fd: int, tmp: str, url: str, sha256: str) -> None:
    """Stream `response` into the open temporary file `fd`, fsync it, and check its SHA-256."""
    digest = hashlib.sha256()
    with os.fdopen(fd, "wb") as out:
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if digest.hexdigest() != sha256:
        raise ChecksumError(
            f"download of {url} is corrupt: SHA-256 {digest.hexdigest()} but expected {sha256}; "
            f"the partial file {tmp} was deleted; try again later or fetch the file by other means"
        )


def download(name: str) -> dict[str, str]:
    """Fetch the four gzip files of `name` into its cache directory; return their paths."""
    target = cache_dir(name)
    paths = {}
    for role, base in FILE_NAMES.items():
        dest = os.path.join(target, base + ".gz")
        if not os.path.isfile(dest):
            fetch(BASE_URLS[name] + base + ".gz", dest, SHA256[name][role])
        paths[role] = dest
    return paths
