"""The path rules of ais_bench's current front end, as its path_security_check module applies them.

Facts (read from Yanguan619/aclruntime at c662cad6, ais_bench/infer/common/path_security_check.py
and args_check.py; the June 2023 front end had none of this):
  - every path is made absolute against the working folder first, then the string must hold
    only A-Z a-z 0-9 _ - / . , be at most 4096 characters long and have names of at most 255;
  - the path itself must not be a symbolic link (only the last name is looked at);
  - the current user must own it or be a member of its group;
  - a path it reads must exist, be readable and not be group- or other-writable (each entry
    of an --input folder too);
  - a path it writes may be missing; if present it must be writable and not group-writable nor
    other-readable/-writable/-executable (at most 0750);
  - folders it creates get 0750 one level at a time, files it writes 0640 (under the umask);
  - a file it is about to write is removed first, and refused if another user owns it.
Each failed rule logs its own `[ERROR]` line and a `[SOLUTION]` line; the caller turns the
outcome into an argparse error (exit 2), a ValueError or an OpenException.
"""
from __future__ import annotations

import os
import re
import stat

from ais_bench import console

READ, WRITE, NONE = "read", "write", "none"
_ILLEGAL = re.compile(r"[^_A-Za-z0-9/.-]")
MAX_PATH = 4096
MAX_NAME = 255
DIR_MODE = 0o750
FILE_MODE = 0o640
OM_MAX_SIZE = 10 * 1024 ** 3
ACL_JSON_MAX_SIZE = 8 * 1024
READ_FILE_MAX_SIZE = 4 * 1024 ** 3
_READ_FORBIDDEN = stat.S_IWGRP | stat.S_IWOTH
_WRITE_FORBIDDEN = stat.S_IWGRP | stat.S_IWOTH | stat.S_IROTH | stat.S_IXOTH
_FAQ = ('"gitee repo: Ascend/tools, path:tools/ais_bench-workload/tool/ais_bench/README.md, '
        'chapter: FAQ/security_error/{}_error_log_solution"')


class OpenException(Exception):
    pass


def _solution(topic: str) -> None:
    # The level name and the link are coloured, as the real logger prints them.
    console.raw(f"[\033[1;32mSOLUTION\033[0m] visit \033[1;32m {_FAQ.format(topic)} \033[0m "
                "for detailed solution")


def string_ok(path: str) -> bool:
    if len(path) > MAX_PATH:
        console.error(f"file total path's length out of range ({MAX_PATH}), please check the "
                      "file(or directory) path")
        _solution("path_length_overflow")
        return False
    if any(len(name) > MAX_NAME for name in path.split("/")):
        console.error(f"file base name length out of range ({MAX_NAME}), please check the "
                      "file(or directory) path")
        _solution("path_length_overflow")
        return False
    if _ILLEGAL.search(path):
        console.error("path contains illegal char, legal chars include A-Z a-z 0-9 _ - / .")
        _solution("path_contain_illegal_char")
        return False
    return True


class PathInfo:
    """One path as the checks see it; raises OpenException when its string is refused."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        if not string_ok(self.path):
            raise OpenException("create FileStat failed")
        self.exists = os.path.exists(self.path)
        self.stat = os.stat(self.path) if self.exists else None

    @property
    def is_link(self) -> bool:
        return self.exists and os.path.islink(self.path)

    @property
    def is_file(self) -> bool:
        return self.stat is not None and stat.S_ISREG(self.stat.st_mode)

    @property
    def is_dir(self) -> bool:
        return self.stat is not None and stat.S_ISDIR(self.stat.st_mode)

    @property
    def mode(self) -> int:
        return stat.S_IMODE(self.stat.st_mode) if self.stat else 0o777

    @property
    def is_owner(self) -> bool:
        return self.stat is not None and self.stat.st_uid == os.geteuid()

    @property
    def owner_or_group(self) -> bool:
        return self.stat is not None and (self.is_owner or self.stat.st_gid in os.getgroups())

    def legal(self, perm: str = NONE) -> bool:
        p = self.path
        if not self.exists and perm != WRITE:
            console.error(f"path: {p} not exist, please check if file or dir is exist")
            return False
        if self.is_link:
            console.error(f"path :{p} is a soft link, not supported, please import file(or "
                          "directory) directly")
            _solution("soft_link")
            return False
        if self.exists and not self.owner_or_group:
            console.error(f"current user isn't path:{p}'s owner or ownergroup, make sure current "
                          "user belong to file(or directory)'s owner or ownergroup")
            _solution("owner_or_ownergroup")
            return False
        if perm == READ:
            if self.mode & _READ_FORBIDDEN:
                console.error(f"The file {p} is group writable, or is others writable, as import "
                              "file(or directory), permission should not be over 0o755(rwxr-xr-x)")
                _solution("path_permission")
                return False
            if not os.access(p, os.R_OK) or not self.mode & stat.S_IRUSR:
                console.error(f"Current user doesn't have read permission to the file {p}, as "
                              "import file(or directory), permission should be at least "
                              "0o400(r--------) ")
                _solution("path_permission")
                return False
        elif perm == WRITE and self.exists:
            if self.mode & _WRITE_FORBIDDEN:
                console.error(f"The file {p} is group writable, or is others writable, as export "
                              "file(or directory), permission should not be over 0o750(rwxr-x---)")
                _solution("path_permission")
                return False
            if not os.access(p, os.W_OK):
                console.error(f"Current user doesn't have write permission to the file {p}, as "
                              "export file(or directory), permission should be at least "
                              "0o200(-w-------) ")
                _solution("path_permission")
                return False
        return True

    def has_suffix(self, suffix: str) -> bool:
        if self.exists and not self.is_file:
            console.error(f"path: {self.path} is not a file")
            return False
        if os.path.splitext(self.path)[1] != f".{suffix}":
            console.error(f"path:{self.path}, file type not in {[suffix]}")
            return False
        return True

    def size_within(self, limit: int) -> bool:
        if not self.is_file:
            console.error(f"path: {self.path} is not a file")
            return False
        if self.stat.st_size > limit:
            console.error(f"file_size:{self.stat.st_size} byte out of max limit {limit} byte")
            return False
        return True


def check_path(path: str, perm: str, is_file: bool = True, suffix: str | None = None,
               max_size: int = ACL_JSON_MAX_SIZE) -> None:
    """The checks the Python API and the run itself apply; ValueError when one fails."""
    try:
        info = PathInfo(path)
    except OpenException as exc:
        raise ValueError("The path string is illegal. Please check.") from exc
    if is_file != info.is_file:
        raise ValueError(f"The path:{path} is {'not a file' if is_file else 'not a directory'}.")
    if not info.legal(perm):
        raise ValueError(f"The path:{path} is illegal. Please check the error log for more detail.")
    if suffix and info.is_file and not info.has_suffix(suffix):
        raise ValueError(f"The suffix of path:{path} not in {[suffix]}. Please check.")
    if info.is_file and not info.size_within(max_size):
        raise ValueError(f"The file:{path} size is larger than {max_size}. Please check.")


def makedirs(path: str) -> None:
    """Each missing folder of the absolute path made with DIR_MODE, top down."""
    current = ""
    for name in os.path.abspath(path).split("/"):
        if not name:
            continue
        current += "/" + name
        if not os.path.exists(current):
            try:
                os.mkdir(current, DIR_MODE)
            except OSError as exc:
                raise RuntimeError(f"can not make dir: {current}") from exc


def open_checked(path: str, mode: str):
    """A file opened as ais_bench opens its inputs ("rb") and results ("wb")."""
    info = PathInfo(path)
    if info.is_dir:
        raise OpenException(f"Expecting a file, but it's a folder. {path}")
    if info.is_link:
        raise OpenException(f"Softlink is not allowed to be opened. {path}")
    if "r" in mode:
        if not info.exists:
            raise OpenException(f"No such file or directory {path}")
        if info.stat.st_size > READ_FILE_MAX_SIZE:
            raise OpenException(f"The file size has exceeded the specifications and cannot be "
                                f"read. {path}")
        return open(path, mode)
    if info.exists:
        if not info.is_owner:
            raise OpenException(f"The file owner is inconsistent with the current process user "
                                f"and is not allowed to write. {path}")
        os.remove(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    return os.fdopen(fd, mode)
