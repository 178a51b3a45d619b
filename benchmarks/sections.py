"""docs/benchmarks.md is written by several benchmarks, each owning one marked section.

A section is the text between `<!-- NAME:begin -->` and `<!-- NAME:end -->`; a benchmark
replaces only its own, so `make bench` and `make bench-scale` never erase each other's figures.
"""

from pathlib import Path

TITLE = "# Benchmarks\n"


def markers(name: str) -> tuple[str, str]:
    """The begin and end comment lines of section `name`."""
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def replace_section(path: Path, name: str, body: str) -> None:
    """Write `body` (markdown) as section `name` of `path`: in place of the old one, or at the
    end of the file when it has none yet (a missing file starts with the title). Other
    sections and any text between them are kept byte for byte."""
    begin, end = markers(name)
    block = f"{begin}\n{body.strip(chr(10))}\n{end}"
    current = path.read_text() if path.exists() else TITLE
    if begin in current and end in current.split(begin, 1)[1]:
        head, rest = current.split(begin, 1)
        current = head + block + rest.split(end, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(current)
    print(f"section {name} written to {path}", flush=True)
