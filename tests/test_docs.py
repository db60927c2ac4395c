"""The documentation cannot drift from the code: README.md, docs/*.md, suites/README.md and
benchmarks/README.md are read here and held against the real suite loader and CLI parser.

What is checked, each failure naming the page and line:

- Every ```toml block is a suite and goes through `bench validate` (`bench.cli.main`, so
  load, plan and the file checks) from a file in a temporary `suites/` folder. What the suite
  points to is provided there first, as a user would have it: a dataset `root` (relative
  paths only) gets tiny files in the real on-disk format (tests/helpers/formats.py); a
  `checkpoint`, `inception_weights` or RobustBench zoo file an empty stand-in (validation checks that the file
  exists; only `bench run` reads it); a `factory` whose top-level package cannot be found a
  module defining the callable's name. A factory in an existing package (`bench.models.zoo`)
  is checked as it is.
- Every command line that runs bench (`bench ...`, `.venv/bin/bench ...`, `python -m bench
  ...`) in a shell code block, a CI job's `run:` step (```yaml) or an inline code span parses
  with `bench.cli.build_parser()`;
  an inline span of just `bench SUBCOMMAND` must name a subcommand. A `--flag` span on its own
  must be an option of bench or of a script under benchmarks/ or docs/. `python SCRIPT` and
  `pytest PATH` name files that exist, and the script defines each `--flag` given to it.
- Every relative link resolves to a file or folder, and every `#anchor` to a heading of the
  page it points to (GitHub's slugs: lower case, punctuation dropped, spaces to hyphens,
  `-1`, `-2`... for repeats).
- Every suite under suites/ is linked from some page and validates (with its files provided
  as above); docs/cli.md documents every subcommand and option of the parser.

An HTML comment on the line before a block or table (blank lines allowed) says what else it is:

    <!-- docs-test: fails "TEXT" ["TEXT" ...] -->
        the TOML block shows a mistake on purpose: `bench validate`, on the block as written
        (no files provided), must exit 2 with one line that contains every TEXT (give the key
        path, e.g. "robustness[0].epsilons[1]", and words of the message the page quotes).
    <!-- docs-test: fragment-of suites/NAME.toml -->
        the TOML block is part of a suite: validated appended to that shipped suite.
    <!-- docs-test: rules -->
        the TOML block is a `bench compare --rules` file, checked as compare reads one.
    <!-- docs-test: base -->
        the TOML block is the suite that the `errors` tables below it (same page) change.
    <!-- docs-test: keys CLASS -->
        the table documents `bench.suite.schema.CLASS`: its `key` column lists every field,
        no more, no less; a `default` written as `required`, `none` or starting with a TOML
        value in code (one per key of the row) must be the schema's default.
    <!-- docs-test: errors CLASS at "PATH" -->
        each row's first cell is code like `epochs = 0` or `recipe = "pgd", epsilon = 2`,
        applied to the base suite's entry at PATH (e.g. "models.cnn.train",
        "robustness[0]"); `bench validate` (the base's files provided, not the row's) must
        exit 2 with one line naming PATH and containing the second cell's text. Together the
        rows set every field of CLASS.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import shlex
import shutil
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bench.cli import build_parser, main
from tests.helpers.toml_write import dumps

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")),
         REPO / "suites" / "README.md", REPO / "benchmarks" / "README.md",
         REPO / "tests" / "benchmarks" / "README.md"]
SUITES = sorted((REPO / "suites").glob("*.toml"))
SHELL_LANGS = {"", "bash", "sh", "shell", "console", "text"}
MARKER = re.compile(r"^<!--\s*docs-test:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
SHELL_CONTROL = {"&&", "||", ";", "|", "&"}


def fail(message: str) -> None:
    pytest.fail(message, pytrace=False)


# -- reading pages -----------------------------------------------------------------------------

@dataclass
class Block:
    page: Path
    line: int  # of the opening fence
    lang: str
    text: str
    marker: str | None


@dataclass
class Table:
    page: Path
    line: int  # of the header row
    header: list[str]
    rows: list[tuple[int, list[str]]]  # (line, cells)
    marker: str | None


@dataclass
class Page:
    path: Path
    blocks: list[Block] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    prose: list[tuple[int, str]] = field(default_factory=list)  # lines outside code blocks
    problems: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.relative_to(REPO).as_posix()

    def where(self, line: int) -> str:
        return f"{self.name}:{line}"


def split_row(line: str) -> list[str]:
    """The cells of a `| a | b |` row; `\\|` is a pipe inside a cell."""
    cells = line.strip().strip("|").replace("\\|", "\0").split("|")
    return [c.strip().replace("\0", "|") for c in cells]


def read_page(path: Path) -> Page:
    page = Page(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    marker, marker_line, i = None, 0, 0
    while i < len(lines):
        line, number = lines[i], i + 1
        fence = FENCE.match(line)
        found = MARKER.match(line.strip())
        if found:
            if marker is not None:
                page.problems.append(f"{page.where(marker_line)}: docs-test marker before nothing")
            marker, marker_line = found.group(1), number
        elif fence:
            end = i + 1
            while end < len(lines) and not lines[end].startswith(fence.group(1)):
                end += 1
            page.blocks.append(Block(path, number, fence.group(2).lower(),
                                     "\n".join(lines[i + 1:end]) + "\n", marker))
            marker, i = None, end
        elif line.startswith("    ") and i > 0 and not lines[i - 1].strip():
            end = i  # an indented code block: shell lines, as a fenced block without a language
            while end < len(lines) and (lines[end].startswith("    ") or not lines[end].strip()):
                end += 1
            page.blocks.append(Block(path, number, "", "\n".join(
                t[4:] for t in lines[i:end]) + "\n", marker))
            marker, i = None, end - 1
        elif line.startswith("|") and i + 1 < len(lines) and re.match(r"^\|[\s:|-]+\|$", lines[i + 1].strip()):
            end = i + 2
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            rows = [(k + 1, split_row(lines[k])) for k in range(i + 2, end)]
            page.tables.append(Table(path, number, split_row(line), rows, marker))
            page.prose += [(k + 1, lines[k]) for k in range(i, end)]
            marker, i = None, end - 1
        elif line.strip():
            if marker is not None:
                page.problems.append(f"{page.where(marker_line)}: docs-test marker not followed "
                                     "by a code block or a table")
                marker = None
            page.prose.append((number, line))
        i += 1
    if marker is not None:
        page.problems.append(f"{page.where(marker_line)}: docs-test marker before nothing")
    return page


_PAGES: dict[Path, Page] = {}


def page_of(path: Path) -> Page:
    if path not in _PAGES:
        _PAGES[path] = read_page(path)
    return _PAGES[path]


def all_pages() -> list[Page]:
    return [page_of(p) for p in PAGES]


def marker_words(marker: str) -> tuple[str, list[str]]:
    """`fails "a b" "c"` -> ("fails", ["a b", "c"])."""
    words = shlex.split(marker)
    return words[0], words[1:]


def toml_blocks() -> list[Block]:
    return [b for p in all_pages() for b in p.blocks if b.lang == "toml"]


def block_id(b: Block | Table) -> str:
    return f"{b.page.relative_to(REPO).as_posix()}:{b.line}"


# -- validating suites the way a user would have them -------------------------------------------

def provide_files(suite_file: Path, doc: dict) -> None:
    """Create what `doc` (the parsed suite at `suite_file`) points to, if it is not there yet."""
    from tests.helpers import formats

    here = suite_file.parent
    for ds in doc.get("datasets", {}).values():
        root = ds.get("root") if isinstance(ds, dict) else None
        if not isinstance(root, str) or not root.strip() or Path(root).is_absolute() or "~" in root:
            continue
        target = (here / root).resolve()
        if target.exists():
            continue
        writer = {"mnist": formats.write_mnist, "fashion-mnist": formats.write_fashion_mnist,
                  "cifar10": formats.write_cifar10, "svhn": formats.write_svhn,
                  "imagefolder": formats.write_imagefolder}.get(ds.get("kind"))
        if writer:
            writer(target)
    models = [m for m in doc.get("models", {}).values() if isinstance(m, dict)]
    files = [m.get("checkpoint") for m in models]
    files.append(doc.get("suite", {}).get("inception_weights"))
    files += [zoo_file(m) for m in models if isinstance(m.get("robustbench"), dict)]
    for name in files:
        if isinstance(name, str) and name.strip() and not Path(name).is_absolute():
            target = here / name
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(b"")  # validation checks that it exists; `run` reads it
    for m in doc.get("models", {}).values():
        factory = m.get("factory") if isinstance(m, dict) else None
        if isinstance(factory, str) and ":" in factory:
            provide_module(suite_file.parent.parent / "pkgs", factory)


def zoo_file(model: dict) -> str | None:
    """Where a RobustBench zoo model's weights go (RobustBench's layout under `model_dir`)."""
    zoo = model["robustbench"]
    parts = [model.get("model_dir", "models"), zoo.get("dataset"), zoo.get("threat_model")]
    if not all(isinstance(p, str) for p in parts) or not isinstance(zoo.get("name"), str):
        return None
    return str(Path(*parts) / f"{zoo['name']}.pt")


def provide_module(folder: Path, factory: str) -> None:
    """A user's module `pkg.mod` defining `Name`, for `factory = "pkg.mod:Name"`, when no
    package `pkg` can be found (as the user's own code would be on their path)."""
    module, _, attr = factory.partition(":")
    parts = module.split(".")
    if not re.fullmatch(r"[A-Za-z_][\w.]*", module) or importlib.util.find_spec(parts[0]):
        return
    for i in range(1, len(parts)):
        package = folder.joinpath(*parts[:i])
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").touch()
    source = folder.joinpath(*parts[:-1], f"{parts[-1]}.py")
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(f"def {attr.split('.')[0]}():\n    raise NotImplementedError\n")
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    importlib.invalidate_caches()


def validate_text(text: str, tmp: Path, name: str = "doc.toml",
                  provide: bool = True) -> tuple[int, str]:
    """(exit code, stderr) of `bench validate` on `text` saved as tmp/suites/NAME, with the
    files it points to provided first unless `provide` is false."""
    suite_file = tmp / "suites" / name
    suite_file.parent.mkdir(parents=True, exist_ok=True)
    suite_file.write_text(text, encoding="utf-8")
    if provide:
        try:
            provide_files(suite_file, tomllib.loads(text))
        except tomllib.TOMLDecodeError:
            pass  # bench validate reports it
    return run_cli(["validate", str(suite_file)])


def run_cli(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
    return code, err.getvalue().strip()


def base_suite(block: Block) -> Block:
    bases = [b for b in page_of(block.page).blocks
             if b.marker and b.marker.split()[0] == "base" and b.line < block.line]
    if not bases:
        fail(f"{block_id(block)}: an `errors` table needs a `base` block above it on its page")
    return bases[-1]


# -- TOML blocks --------------------------------------------------------------------------------

@pytest.mark.parametrize("block", toml_blocks(), ids=block_id)
def test_toml_block_validates(block: Block, tmp_path):
    kind, args = marker_words(block.marker) if block.marker else ("suite", [])
    where = block_id(block)
    if kind == "rules":
        # What bench.compare.rules.load_rules_file does, without importing bench.compare
        # (pandas, scipy): read the file, validate its tables.
        from bench.errors import UserError
        from bench.suite.rules import validate_rules
        from bench.suite.tomlfile import read_toml

        path = tmp_path / "rules.toml"
        path.write_text(block.text, encoding="utf-8")
        try:
            text, raw = read_toml(path, "rules")
            validate_rules(raw, path, text)
        except UserError as exc:
            fail(f"{where}: {exc}")
        return
    text = block.text
    if kind == "fragment-of":
        (suite,) = args
        text = (REPO / suite).read_text(encoding="utf-8") + "\n" + block.text
    else:
        if kind not in ("suite", "fails", "base"):
            fail(f"{where}: unknown docs-test marker {kind!r}")
    code, err = validate_text(text, tmp_path, provide=kind != "fails")
    err = err.replace(f"{tmp_path}/suites/", "")  # the block's own name is its page and line
    if kind == "fails":
        missing = [t for t in args if t not in err]
        if not args:
            fail(f"{where}: `fails` needs the text the error must contain")
        elif code != 2:
            fail(f"{where}: this example should fail validation, but `bench validate` exits {code}")
        elif missing or "\n" in err:
            fail(f"{where}: the error does not say {missing}: {err}")
    elif code != 0:
        fail(f"{where}: {err}")


# -- key tables and their wrong values -----------------------------------------------------------

def marked_tables(kind: str) -> list[Table]:
    return [t for p in all_pages() for t in p.tables if t.marker and t.marker.split()[0] == kind]


def schema_class(name: str):
    from bench.suite import schema

    cls = getattr(schema, name, None)
    if cls is None:
        fail(f"bench.suite.schema has no {name}")
    return cls


def column(table: Table, word: str) -> int:
    for i, title in enumerate(table.header):
        if word in title.lower():
            return i
    raise AssertionError(f"{block_id(table)}: no column titled with {word!r} in {table.header}")


def spans(cell: str) -> list[str]:
    return [m.group(2).strip() for m in CODE_SPAN.finditer(cell)]


def toml_value(text: str):
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return None


@pytest.mark.parametrize("table", marked_tables("keys"), ids=block_id)
def test_key_table_matches_schema(table: Table):
    cls = schema_class(marker_words(table.marker)[1][0])
    fields = cls.model_fields
    key_col, default_col = column(table, "key"), column(table, "default")
    problems, documented = [], set()
    for line, cells in table.rows:
        keys = spans(cells[key_col])
        documented.update(keys)
        where = f"{block_id(table).rsplit(':', 1)[0]}:{line}"
        problems += [f"{where}: {k!r} is not a key of {cls.__name__}" for k in keys if k not in fields]
        problems += check_defaults(where, cells[default_col], [k for k in keys if k in fields], fields)
    problems += [f"{block_id(table)}: {cls.__name__}.{k} is not documented in this table"
                 for k in fields if k not in documented]
    if problems:
        fail("\n".join(problems))


def check_defaults(where: str, cell: str, keys: list[str], fields) -> list[str]:
    text = cell.strip().lower()
    if text == "required":
        return [f"{where}: {k} is documented as required but has a default"
                for k in keys if not fields[k].is_required()]
    if text == "none":
        return [f"{where}: {k} is documented with no default but defaults to "
                f"{fields[k].get_default(call_default_factory=True)!r}"
                for k in keys if fields[k].is_required() or
                fields[k].get_default(call_default_factory=True) is not None]
    if not cell.startswith("`"):
        return []  # prose: what the default depends on
    values = spans(cell)
    if len(values) < len(keys):
        values = values[:1] * len(keys)  # one default for every key of the row
    out = []
    for key, written in zip(keys, values):
        value = toml_value(written)
        if isinstance(value, str) and re.fullmatch(r"\d+/\d+", value):
            numerator, denominator = value.split("/")
            value = int(numerator) / int(denominator)  # an ε written as a fraction
        if value is None:
            continue  # a formula, like `2.5·ε/steps`
        actual = fields[key].get_default(call_default_factory=True)
        if fields[key].is_required() or value != actual:
            out.append(f"{where}: {key} is documented to default to {written}, the schema says "
                       f"{'required' if fields[key].is_required() else repr(actual)}")
    return out


def entry_at(doc: dict, path: str) -> dict:
    node = doc
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        node = node[int(part[1:-1])] if part.startswith("[") else node.setdefault(part, {})
    return node


@pytest.mark.parametrize("table", marked_tables("errors"), ids=block_id)
def test_wrong_values_get_the_documented_error(table: Table, tmp_path):
    _, args = marker_words(table.marker)
    if len(args) != 3 or args[1] != "at":
        fail(f"{block_id(table)}: write `errors CLASS at \"PATH\"`")
    cls, path = schema_class(args[0]), args[2]
    base_text = base_suite(Block(table.page, table.line, "", "", None)).text
    code, err = validate_text(base_text, tmp_path, "base.toml")  # provides the base's files
    if code != 0:
        fail(f"{block_id(table)}: the base suite does not validate: {err}")
    base = tomllib.loads(base_text)
    problems, covered = [], set()
    for line, cells in table.rows:
        where = f"{block_id(table).rsplit(':', 1)[0]}:{line}"
        (written,) = spans(cells[0])[:1] or [""]
        change = toml_value("{" + written + "}")
        if not change:
            problems.append(f"{where}: the first cell should be code like `key = value`")
            continue
        covered.update(change)
        doc = tomllib.loads(dumps(base))
        entry_at(doc, path).update(change)
        code, err = validate_text(dumps(doc), tmp_path, f"row{line}.toml", provide=False)
        expected = re.sub(r"\s+", " ", CODE_SPAN.sub(r"\2", cells[1])).strip()
        if code != 2:
            problems.append(f"{where}: `{written}` at {path} validates (exit {code}); "
                            f"the page says it gets: {expected}")
        elif f": {path}" not in err or expected not in err:
            problems.append(f"{where}: `{written}` at {path} gets\n    {err}\n  the page says\n"
                            f"    {expected}")
    problems += [f"{block_id(table)}: no row shows a wrong value of {cls.__name__}.{k}"
                 for k in cls.model_fields if k not in covered]
    if problems:
        fail("\n".join(problems))


# -- command lines ------------------------------------------------------------------------------

def command_texts(page: Page) -> list[tuple[int, str, bool]]:
    """(line, text, inline) of every shell line of a code block and every inline code span."""
    out = []
    for b in page.blocks:
        if b.lang in ("yaml", "yml"):  # CI jobs: the commands of their `run:` steps
            for k, line in enumerate(b.text.splitlines()):
                text = re.sub(r"^(- )?(run:)?\s*", "", line.strip())
                if re.match(r"^(\S*/)?(bench|python3?|pytest)\b", text):
                    out.append((b.line + 1 + k, text, False))
            continue
        if b.lang not in SHELL_LANGS:
            continue
        joined, start = "", 0
        for k, line in enumerate(b.text.splitlines()):
            if not joined:
                start = b.line + 1 + k
            joined += line.rstrip("\\").rstrip() + " " if line.rstrip().endswith("\\") else line
            if not line.rstrip().endswith("\\"):
                out.append((start, joined.strip().removeprefix("$ "), False))
                joined = ""
    for line, text in page.prose:
        out += [(line, m.group(2).strip(), True) for m in CODE_SPAN.finditer(text)]
    return out


def segments(text: str) -> list[list[str]]:
    """The simple commands of a shell line, redirections and comments dropped."""
    lex = shlex.shlex(text, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    try:
        tokens = list(lex)
    except ValueError:  # unbalanced quotes: not a command line
        return []
    out, current, skip = [], [], False
    for tok in tokens:
        if skip:
            skip = False
        elif tok in SHELL_CONTROL:
            out.append(current)
            current = []
        elif set(tok) <= set("<>") or tok in ("2>", "&>"):
            skip = True
        else:
            current.append(tok)
    out.append(current)
    return [s for s in out if s]


def program(tokens: list[str]) -> tuple[str, list[str]]:
    """("bench" | "python" | "pytest" | other, arguments) of a simple command."""
    while tokens and (re.fullmatch(r"[A-Z_]+=\S*", tokens[0]) or tokens[0] == "time"):
        tokens = tokens[1:]
    if not tokens:
        return "", []
    name, rest = Path(tokens[0]).name, tokens[1:]
    if name in ("python", "python3") and rest[:2] == ["-m", "bench"]:
        return "bench", rest[2:]
    if name in ("python", "python3") and rest[:2] == ["-m", "pytest"]:
        return "pytest", rest[2:]
    return name, rest


def subcommands() -> dict:
    import argparse

    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return action.choices


def script_flags(path: Path) -> set[str]:
    return set(re.findall(r"[\"'](--[a-z][a-z0-9-]*)[\"']", path.read_text(encoding="utf-8")))


def known_flags() -> set[str]:
    flags = {o for p in subcommands().values() for a in p._actions for o in a.option_strings}
    flags |= {a for a in build_parser()._actions for a in a.option_strings}
    for script in [*(REPO / "benchmarks").glob("*.py"), *(REPO / "docs").glob("*.py")]:
        flags |= script_flags(script)
    return flags


def check_command(tokens: list[str], inline: bool) -> str | None:
    name, args = program(tokens)
    if name == "bench":
        if inline and len(args) <= 1:
            return None if not args or args[0] in subcommands() or args[0].startswith("-") \
                else f"no bench command {args[0]!r}"
        code, err = run_cli_parse(args)
        return None if code == 0 else (err.splitlines() or ["argparse error"])[-1]
    if name in ("python", "python3") and args and args[0].endswith(".py"):
        script = REPO / args[0]
        if not script.is_file():
            return f"no script {args[0]}"
        unknown = [a.split("=")[0] for a in args[1:] if a.startswith("--")
                   and a.split("=")[0] not in script_flags(script)]
        return f"{args[0]} has no option {unknown[0]}" if unknown else None
    if name == "pytest":
        paths = [a.split("::")[0] for a in args if a.startswith("tests/")]
        missing = [p for p in paths if not (REPO / p).exists()]
        return f"no test file {missing[0]}" if missing else None
    return None


def run_cli_parse(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            build_parser().parse_args(args)
        except SystemExit as exc:
            return exc.code or 0, err.getvalue()
    return 0, ""


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_commands_parse(path: Path):
    page, flags, problems = page_of(path), known_flags(), []
    for line, text, inline in command_texts(page):
        if inline and re.fullmatch(r"--[a-z][a-z0-9-]*( \S+)?", text):
            if text.split()[0] not in flags:
                problems.append(f"{page.where(line)}: `{text}`: no such option of bench or of "
                                "a script under benchmarks/ or docs/")
            continue
        if inline and not re.match(r"^(\S*/)?(bench|python3?|pytest|time)\b", text):
            continue
        for tokens in segments(text):
            problem = check_command(tokens, inline)
            if problem:
                problems.append(f"{page.where(line)}: `{' '.join(tokens)}`: {problem}")
    if problems:
        fail("\n".join(problems))


# -- links and anchors --------------------------------------------------------------------------

def github_slug(heading: str) -> str:
    text = CODE_SPAN.sub(r"\2", heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for _, text in page_of(path).prose:
        m = HEADING.match(text)
        if m:
            slug = github_slug(m.group(2))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.add(slug if n == 0 else f"{slug}-{n}")
        out.update(re.findall(r"<a (?:id|name)=\"([^\"]+)\"", text))
    return out


def links(page: Page) -> list[tuple[int, str]]:
    return [(line, m.group(2)) for line, text in page.prose
            for m in LINK.finditer(CODE_SPAN.sub("", text))]


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_links_resolve(path: Path):
    page = page_of(path)
    problems = list(page.problems)
    for line, target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # https:, mailto:: not ours to check offline
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            problems.append(f"{page.where(line)}: link to {target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{page.where(line)}: link to {target}: no heading #{anchor} in "
                            f"{dest.relative_to(REPO).as_posix()}")
    if problems:
        fail("\n".join(problems))


# -- the suites we ship, and the CLI reference ---------------------------------------------------

@pytest.mark.parametrize("suite", SUITES, ids=lambda p: p.name)
def test_shipped_suite_is_linked_and_validates(suite: Path, tmp_path):
    linked = any((page.path.parent / target.partition("#")[0]).resolve() == suite
                 for page in all_pages() for _, target in links(page))
    if not linked:
        fail(f"suites/{suite.name} is linked from no page ({', '.join(p.name for p in all_pages())})")
    (tmp_path / "suites").mkdir()
    copy = Path(shutil.copy(suite, tmp_path / "suites" / suite.name))
    provide_files(copy, tomllib.loads(copy.read_text(encoding="utf-8")))
    code, err = run_cli(["validate", str(copy)])
    if code != 0:
        fail(f"suites/{suite.name}: {err}")


def test_cli_reference_documents_every_option():
    page = page_of(REPO / "docs" / "cli.md")
    sections: dict[str, set[str]] = {}
    current = None
    for _, text in page.prose:
        m = HEADING.match(text)
        if m:
            names = spans(m.group(2))
            current = names[0].split()[1] if names and names[0].startswith("bench ") else None
            sections.setdefault(current, set())
        elif current:
            sections[current].update(s.split()[0] for s in spans(text) if s.startswith("-"))
    problems = []
    for name, sub in subcommands().items():
        if name not in sections:
            problems.append(f"docs/cli.md: no section headed `bench {name}`")
            continue
        for action in sub._actions:
            longest = max(action.option_strings, key=len, default=None)
            if longest and longest != "--help" and longest not in sections[name]:
                problems.append(f"docs/cli.md: `bench {name}` does not document {longest}")
    if problems:
        fail("\n".join(problems))
