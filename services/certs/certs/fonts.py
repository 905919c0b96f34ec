"""The CJK font for certificates, cut once to GB2312 and cached on disk.

WeasyPrint embeds (and subsets) every font face a document uses, per render. Measured here (WeasyPrint 70,
12-row 完税证明, 2 shared cores): full WenQuanYi Zen Hei 0.13-0.21 s, this GB2312 cut 0.13-0.15 s per PDF,
the gap largest on a fresh FontConfiguration and the first render of a process; a second weight (synthetic
bold) roughly doubles either, so the templates use one weight. Names can hold characters beyond GB2312
(生僻字): the full font stays in the CSS font-family list after the subset, and Pango falls back to it per
glyph; it is only embedded when a glyph actually comes from it.
"""
import hashlib
import logging
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SUBSET_FAMILY = "CertCJK"  # the @font-face name of the cut-down font
DEFAULT_FAMILY = "WenQuanYi Zen Hei"
# Characters the templates print besides GB2312 (full-width punctuation and symbols used on the forms).
EXTRA_CHARACTERS = "（）【】〔〕：；，。、￥·—－№×…“”‘’《》"
SUBSET_VERSION = "1"  # bump when the cut changes, so cached files are rebuilt


def gb2312_characters() -> str:
    """Every character GB2312 encodes (rows 0xA1–0xF7, cells 0xA1–0xFE), plus printable ASCII."""
    chars = {chr(c) for c in range(0x20, 0x7F)}
    for high in range(0xA1, 0xF8):
        for low in range(0xA1, 0xFF):
            try:
                chars.add(bytes((high, low)).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    return "".join(sorted(chars))


def find_font_file(family=DEFAULT_FAMILY) -> Path:
    """The file fontconfig picks for ``family``; refuses a silent substitute (e.g. DejaVu without CJK)."""
    try:
        answer = subprocess.run(["fc-match", "-f", "%{file}\n%{family}", family], capture_output=True,
                                text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise FontUnavailable(f"fc-match failed: {exc}") from None
    path, _, families = answer.partition("\n")
    if family.lower() not in families.lower() or not Path(path).is_file():
        raise FontUnavailable(f"font {family!r} is not installed (fontconfig offers {families!r}); "
                              f"run tools/ensure_system_packages.sh")
    return Path(path)


class FontUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class PreparedFont:
    subset_path: Path | None  # None: the subset could not be made, the full font is used alone
    fallback_family: str

    def css(self) -> str:
        """@font-face for the subset and the font-family list to use in the document."""
        if self.subset_path is None:
            return ""
        return f'@font-face {{ font-family: "{SUBSET_FAMILY}"; src: url("{self.subset_path.as_uri()}"); }}'

    @property
    def family_list(self) -> str:
        families = ([f'"{SUBSET_FAMILY}"'] if self.subset_path else []) + [f'"{self.fallback_family}"', "sans-serif"]
        return ", ".join(families)


def _font_number(path: Path, family: str) -> int:
    from fontTools.ttLib import TTCollection

    if path.suffix.lower() not in (".ttc", ".otc"):
        return 0
    collection = TTCollection(str(path), lazy=True)
    for number, font in enumerate(collection.fonts):
        if font["name"].getDebugName(1) == family:
            return number
    return 0


def subset_font(source: Path, family: str, target: Path, characters: str):
    """Cut ``source`` to ``characters`` and write it atomically to ``target`` (TrueType, no hinting)."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    options = subset.Options()
    options.hinting = False  # screen hinting is useless in print and doubles the glyph data
    options.desubroutinize = True
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.layout_features = ["*"]
    font = TTFont(str(source), fontNumber=_font_number(source, family), lazy=False)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=characters)
    subsetter.subset(font)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    os.close(fd)
    try:
        font.save(tmp)
        os.replace(tmp, target)  # atomic: a concurrent starter never reads half a file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def prepare_font(cache_dir, family=DEFAULT_FAMILY, use_subset=True, extra_characters="") -> PreparedFont:
    """Find the CJK font and make (or reuse) its GB2312 subset under ``cache_dir``.

    The cache key covers the source file (path, size, mtime), the character set and the cut's version, so an
    upgraded font package or a new template character rebuilds it. A failed cut degrades to the full font:
    slower certificates, never wrong ones.
    """
    source = find_font_file(family)
    if not use_subset:
        return PreparedFont(None, family)
    characters = "".join(sorted(set(gb2312_characters() + EXTRA_CHARACTERS + extra_characters)))
    stat = source.stat()
    key = hashlib.sha256(f"{SUBSET_VERSION}|{source}|{stat.st_size}|{stat.st_mtime_ns}|{family}|{characters}"
                         .encode()).hexdigest()[:16]
    target = Path(cache_dir) / f"certcjk-{key}.ttf"
    if not target.is_file():
        try:
            log.info("cutting %s to %d characters into %s", source.name, len(characters), target)
            subset_font(source, family, target, characters)
        except Exception:
            log.exception("font subset failed; certificates use the full font (slower)")
            return PreparedFont(None, family)
    return PreparedFont(target, family)
