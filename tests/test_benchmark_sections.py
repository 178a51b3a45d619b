"""Each benchmark rewrites only its own section of docs/benchmarks.md."""

from pathlib import Path

from benchmarks import sections

ROOT = Path(__file__).resolve().parent.parent
WRITERS = {
    "bench": ROOT / "benchmarks" / "run.py",
    "otlp": ROOT / "benchmarks" / "run.py",
    "agent-sync": ROOT / "benchmarks" / "agent_sync.py",
    "agent-hooks": ROOT / "scripts" / "bench_agent_hooks.py",
    "scale": ROOT / "benchmarks" / "scale.py",
    "scale-ingest": ROOT / "benchmarks" / "scale_ingest.py",
}


def test_a_section_is_replaced_and_everything_else_kept_byte_for_byte(tmp_path):
    path = tmp_path / "b.md"
    before = (
        "# Benchmarks\n\nintro\n\n<!-- a:begin -->\nold a\n<!-- a:end -->\n\nbetween\n\n"
        "<!-- b:begin -->\nold b\n<!-- b:end -->\ntail\n"
    )
    path.write_text(before)
    sections.replace_section(path, "a", "new a\n\nmore")
    assert path.read_text() == before.replace("old a", "new a\n\nmore")
    sections.replace_section(path, "b", "new b")
    assert path.read_text().endswith("<!-- b:begin -->\nnew b\n<!-- b:end -->\ntail\n")
    assert "\nbetween\n" in path.read_text()


def test_a_new_section_is_appended_and_a_missing_file_starts_with_the_title(tmp_path):
    path = tmp_path / "new.md"
    sections.replace_section(path, "scale", "## Scale\n\nfigures")
    sections.replace_section(path, "otlp", "## OTLP")
    assert path.read_text() == (
        "# Benchmarks\n\n<!-- scale:begin -->\n## Scale\n\nfigures\n<!-- scale:end -->\n\n"
        "<!-- otlp:begin -->\n## OTLP\n<!-- otlp:end -->\n"
    )


def test_the_committed_figures_have_one_section_per_benchmark_that_writes_one():
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    for name, writer in WRITERS.items():
        begin, end = sections.markers(name)
        assert text.count(begin) == 1 and text.count(end) == 1, name
        assert text.index(begin) < text.index(end), name
        assert f'"{name}"' in writer.read_text(), f"{writer.name} does not write {name}"
