"""Build tiny but REAL Argos Translate packages for tests and the demo.

Each package is a genuine .argosmodel: a CTranslate2 model (a one-layer
Marian transformer, converted int8), a SentencePiece model and a MiniSBD
ONNX sentence splitter, so argostranslate loads and runs it exactly as it
runs a real language pack. The models only know the phrases in
workers/test_models/phrases.tsv: anything else comes out as nonsense, and the demo says so.

They must decode the same on every CPU. int8 kernels differ between CPUs
(see workers/cpu_kernels.py), so a model that wins a word by a hair on one
machine loses it on another. Training therefore goes on until, at every
target position, the right token leads every other by MARGIN logits; then
every phrase is decoded with every compute type this CPU supports, under
every kernel variant it can emulate (AVX2-only with oneDNN and with MKL,
AVX-512 without VNNI, SSE4.1), and no package is written unless all of them
give exactly the phrase list. A failing seed is retrained with the next one.

Needs `transformers` and `onnx` besides the project (not needed to *use*
the packages):

    .venv/bin/pip install transformers onnx
    .venv/bin/python tools/test_models/build.py          # writes workers/test_models/*.argosmodel
    .venv/bin/python tools/test_models/build.py --verify # checks the committed packages only
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))  # workers.engine (decoding options), workers.cpu_kernels
OUT = ROOT / "workers" / "test_models"
PAIRS = [("en", "ru"), ("ru", "en"), ("es", "en"), ("en", "de")]
NAMES = {"en": "English", "ru": "Russian", "es": "Spanish", "de": "German"}
PACKAGE_VERSION = "0.2-test"
MARGIN = 10.0  # logits by which the right token must lead at every position (float32, teacher-forced)
MAX_STEPS = 6000
SEEDS = (11, 23, 37, 41)


class NoMargin(Exception):
    """This seed did not train to the margin: the next seed is tried."""


def phrases() -> list[dict[str, str]]:
    with open(OUT / "phrases.tsv", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def train_sentencepiece(lines: list[str], prefix: Path, vocab_size: int) -> None:
    import sentencepiece as spm

    text = prefix.with_suffix(".txt")
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(text),
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        character_coverage=1.0,
        model_type="unigram",
        eos_id=0,
        unk_id=1,
        bos_id=-1,
        pad_id=-1,
        minloglevel=2,
        num_threads=1,
    )


def train_marian(src: list[str], tgt: list[str], sp_path: Path, work: Path, seed: int) -> Path:
    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    torch.manual_seed(seed)
    random.seed(seed)
    sp = spm.SentencePieceProcessor(model_file=str(sp_path))
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    vocab = {p: i for i, p in enumerate(pieces)}
    pad = len(pieces)
    vocab["<pad>"] = pad  # last: the CTranslate2 converter drops it again
    model_dir = work / "hf"
    model_dir.mkdir()
    (model_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    shutil.copy(sp_path, model_dir / "source.spm")
    shutil.copy(sp_path, model_dir / "target.spm")
    tokenizer = MarianTokenizer(
        str(model_dir / "source.spm"),
        str(model_dir / "target.spm"),
        str(model_dir / "vocab.json"),
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
    )
    config = MarianConfig(
        vocab_size=pad + 1,
        d_model=64,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_position_embeddings=64,
        pad_token_id=pad,
        eos_token_id=0,
        decoder_start_token_id=pad,
        forced_eos_token_id=0,
        scale_embedding=True,
        share_encoder_decoder_embeddings=True,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
    )
    model = MarianMTModel(config)
    enc = [sp.encode(s) for s in src]  # argostranslate feeds the encoder without </s>
    dec = [sp.encode(t) + [0] for t in tgt]
    n, s_len, t_len = len(src), max(map(len, enc)), max(map(len, dec))
    input_ids = torch.full((n, s_len), pad)
    attn = torch.zeros((n, s_len), dtype=torch.long)
    labels = torch.full((n, t_len), -100)
    for i, (e, d) in enumerate(zip(enc, dec, strict=True)):
        input_ids[i, : len(e)] = torch.tensor(e)
        attn[i, : len(e)] = 1
        labels[i, : len(d)] = torch.tensor(d)
    dec_in = torch.full((n, t_len), pad)
    dec_in[:, 1:] = labels[:, :-1].clamp(min=0)
    dec_in[:, 1:][labels[:, :-1] == -100] = pad
    emb = model.model.shared.weight
    valid = labels != -100
    safe_labels = labels.clamp(min=0)
    optim = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for step in range(MAX_STEPS):
        noisy = dec_in.clone()
        mask = (torch.rand(noisy.shape) < 0.1) & (noisy != pad)
        noisy[mask] = torch.randint(2, pad, (int(mask.sum()),))
        out = model(input_ids=input_ids, attention_mask=attn, decoder_input_ids=noisy, labels=labels)
        # Cross-entropy, plus a hinge that keeps pushing until the right token leads
        # every other by MARGIN + 1 (the margin is what survives int8 rounding).
        lead = _lead(out.logits, safe_labels)
        hinge = torch.relu(MARGIN + 1.0 - lead)[valid].mean()
        loss = out.loss + hinge
        optim.zero_grad()
        loss.backward()
        optim.step()
        with torch.no_grad():
            emb[pad].zero_()  # CTranslate2 starts decoding from a zero embedding
        if step % 100 == 99:
            worst = min_margin(model, input_ids, attn, dec_in, safe_labels, valid)
            if worst >= MARGIN:
                print(f"  step {step + 1}: smallest lead {worst:.2f} logits", flush=True)
                break
    else:
        worst = min_margin(model, input_ids, attn, dec_in, safe_labels, valid)
        raise NoMargin(f"training did not reach a lead of {MARGIN} logits (smallest {worst:.2f})")
    model.eval()
    model.save_pretrained(model_dir, safe_serialization=True)
    tokenizer.save_pretrained(model_dir)
    return model_dir


def _lead(logits, labels):  # type: ignore[no-untyped-def]
    """Logit of the right token minus the best other one, per position."""
    import torch

    right = logits.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    others = logits.scatter(-1, labels.unsqueeze(-1), torch.finfo(logits.dtype).min)
    return right - others.max(-1).values


def min_margin(model, input_ids, attn, dec_in, labels, valid) -> float:  # type: ignore[no-untyped-def]
    import torch

    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attn, decoder_input_ids=dec_in).logits
    model.train(was_training)
    return float(_lead(logits, labels)[valid].min())


def decode_all(model_dir: Path, src_code: str) -> dict[str, list[str]]:
    """Decode every phrase with every compute type this CPU supports (run in a
    subprocess whose environment picks the kernels)."""
    import ctranslate2
    import sentencepiece as spm

    from workers.engine import DECODE_OPTIONS

    sp = spm.SentencePieceProcessor(model_file=str(model_dir.parent / "sentencepiece.model"))
    pieces = [sp.encode(r[src_code], out_type=str) for r in phrases()]
    out = {}
    for compute_type in sorted(ctranslate2.get_supported_compute_types("cpu")):
        if "float16" in compute_type:
            continue  # not a CPU type in practice (emulated, slow); "auto" never picks it on CPU
        translator = ctranslate2.Translator(str(model_dir), device="cpu", compute_type=compute_type, intra_threads=1)
        results = translator.translate_batch(pieces, **DECODE_OPTIONS)
        out[compute_type] = [sp.decode(r.hypotheses[0]) for r in results]
    return out


def verify(model_dir: Path, src_code: str, expected: list[str]) -> list[str]:
    """Every kernel variant this CPU can run × every compute type: the problems found."""
    from workers.cpu_kernels import cpu_info, variants_for

    problems = []
    model, flags = cpu_info()
    for name, env in variants_for(flags, model).items():
        proc = subprocess.run(
            [sys.executable, __file__, "--decode", str(model_dir), src_code],
            env=os.environ | env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            problems.append(f"{name}: decoding failed: {proc.stderr.strip()[-300:]}")
            continue
        for compute_type, got in json.loads(proc.stdout.splitlines()[-1]).items():
            for want, have in zip(expected, got, strict=True):
                if want != have:
                    problems.append(f"{name}/{compute_type}: {want!r} came out as {have!r}")
        print(f"  checked {name}: {', '.join(json.loads(proc.stdout.splitlines()[-1]))}", flush=True)
    return problems


def build_splitter(lang: str, path: Path) -> None:
    """A MiniSBD model in a few ONNX nodes: every character ends a token, and
    '.', '?', '!' also end a sentence. Real packs ship a trained one."""
    import onnx
    from onnx import TensorProto, helper

    units = helper.make_tensor_value_info("units", TensorProto.INT64, ["B", "T"])
    features = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["B", "T", "F"])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", "T", 5])
    nodes = [
        helper.make_node("Equal", ["units", "id_dot"], ["e1"]),
        helper.make_node("Equal", ["units", "id_q"], ["e2"]),
        helper.make_node("Equal", ["units", "id_excl"], ["e3"]),
        helper.make_node("Or", ["e1", "e2"], ["e12"]),
        helper.make_node("Or", ["e12", "e3"], ["end"]),
        helper.make_node("Cast", ["end"], ["endf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["endf", "axis"], ["end3"]),
        helper.make_node("Mul", ["end3", "sentence"], ["s"]),
        helper.make_node("Add", ["s", "token"], ["logits"]),
    ]
    inits = [
        helper.make_tensor("id_dot", TensorProto.INT64, [], [2]),
        helper.make_tensor("id_q", TensorProto.INT64, [], [3]),
        helper.make_tensor("id_excl", TensorProto.INT64, [], [4]),
        helper.make_tensor("axis", TensorProto.INT64, [1], [2]),
        helper.make_tensor("sentence", TensorProto.FLOAT, [5], [0.0, 0.0, 2.0, 0.0, 0.0]),
        helper.make_tensor("token", TensorProto.FLOAT, [5], [0.0, 1.0, 0.0, 0.0, 0.0]),
    ]
    graph = helper.make_graph(nodes, "minisbd-test", [units, features], [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    vocab = {"<PAD>": 0, "<UNK>": 1, ".": 2, "?": 3, "!": 4}
    meta = {
        "lang_code": lang,
        "config": json.dumps({"feat_funcs": [], "max_seqlen": 1000, "batch_size": 1}),
        "vocab": json.dumps(
            {"lang": lang, "idx": 0, "cutoff": 0, "lower": False, "_unit2id": vocab, "_id2unit": list(vocab)}
        ),
        "lexicon": "null",
    }
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def replace_splitters(out: Path) -> None:
    """Rebuild only the splitter inside already built packages (seconds, not minutes)."""
    for package in sorted(out.glob("*.argosmodel")):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            with zipfile.ZipFile(package) as z:
                z.extractall(work)
            (top,) = [p for p in work.iterdir() if p.is_dir()]
            src = json.loads((top / "metadata.json").read_text())["from_code"]
            build_splitter(src, top / "minisbd" / f"{src}.onnx")
            with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as z:
                for f in sorted(top.rglob("*")):
                    z.write(f, f.relative_to(work))
        print("splitter replaced in", package)


def convert_int8_7bit(model_dir: Path, out: Path) -> None:
    """Convert to CTranslate2 int8 with weights in [-63, 63] instead of [-127, 127].

    CPUs without VNNI multiply u8 activations by s8 weights with ``vpmaddubsw``,
    which saturates a pair of products at 32767: 2 × 255 × 127 overflows, and a
    tiny model decodes differently there. 2 × 255 × 63 does not, so every CPU
    computes the same integers (oneDNN scales its own s8 weights by 0.5 on those
    CPUs for the same reason). Costs one bit of weight precision; the margin
    training and the check below cover it."""
    import ctranslate2
    import numpy as np
    from ctranslate2.specs.model_spec import NumpyVariable, visit_spec

    spec = ctranslate2.converters.TransformersConverter(str(model_dir))._load()
    spec.validate()
    spec.optimize(quantization="int8")
    narrowed = []

    def narrow(layer, name, value):  # type: ignore[no-untyped-def]
        key = name.split("/")[-1]
        scale = getattr(layer, f"{key}_scale", None)
        if not isinstance(value, NumpyVariable) or value.dtype != "int8" or scale is None:
            return
        weights = value.numpy().astype(np.float32)
        setattr(layer, key, NumpyVariable(np.rint(weights * 63 / 127).astype(np.int8)))
        setattr(layer, f"{key}_scale", NumpyVariable((scale.numpy() * np.float32(63 / 127)).astype(np.float32)))
        narrowed.append(name)

    visit_spec(spec, narrow)
    if not narrowed:
        raise SystemExit("no int8 weights found to narrow: has the CTranslate2 spec format changed?")
    out.mkdir(parents=True)
    spec.save(str(out))


def verify_packages(out: Path) -> None:
    rows, failed = phrases(), []
    for package in sorted(out.glob("*.argosmodel")):
        with tempfile.TemporaryDirectory() as tmp:
            with zipfile.ZipFile(package) as z:
                z.extractall(tmp)
            (top,) = [p for p in Path(tmp).iterdir() if p.is_dir()]
            meta = json.loads((top / "metadata.json").read_text())
            print(package.name, flush=True)
            problems = verify(top / "model", meta["from_code"], [r[meta["to_code"]] for r in rows])
            failed.extend(f"{package.name}: {p}" for p in problems)
    if failed:
        raise SystemExit("\n".join(failed))
    print("every package decodes every phrase on every kernel variant checked")


def build_pair(src_code: str, tgt_code: str, rows: list[dict[str, str]], out: Path) -> Path:

    src, tgt = [r[src_code] for r in rows], [r[tgt_code] for r in rows]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        top = work / f"translate-{src_code}_{tgt_code}-test"
        top.mkdir()
        train_sentencepiece(src + tgt, work / "sp", vocab_size=400)
        shutil.copy(work / "sp.model", top / "sentencepiece.model")
        for seed in SEEDS:
            print(f"{src_code}-{tgt_code}: training (seed {seed})", flush=True)
            shutil.rmtree(work / "hf", ignore_errors=True)
            shutil.rmtree(top / "model", ignore_errors=True)
            try:
                model_dir = train_marian(src, tgt, work / "sp.model", work, seed=seed)
            except NoMargin as exc:
                print(f"  seed {seed} rejected: {exc}", flush=True)
                continue
            convert_int8_7bit(model_dir, top / "model")
            problems = verify(top / "model", src_code, tgt)
            if not problems:
                break
            print(f"  seed {seed} rejected: {len(problems)} mismatches, e.g. {problems[:3]}", flush=True)
        else:
            raise SystemExit(f"{src_code}-{tgt_code}: no seed decodes every phrase on every kernel; nothing written")
        build_splitter(src_code, top / "minisbd" / f"{src_code}.onnx")
        metadata = {
            "package_version": PACKAGE_VERSION,
            "argos_version": "1.11.0",
            "from_code": src_code,
            "from_name": NAMES[src_code],
            "to_code": tgt_code,
            "to_name": NAMES[tgt_code],
            "type": "translate",
            "links": [],
            "description": "TEST MODEL: knows only the phrases in workers/test_models/phrases.tsv",
        }
        (top / "metadata.json").write_text(json.dumps(metadata, indent=2), encoding="utf-8")
        target = out / f"translate-{src_code}_{tgt_code}-test.argosmodel"
        out.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(top.rglob("*")):
                z.write(f, f.relative_to(work))
    return target


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--pair", action="append", help="e.g. en-ru (default: all)")
    p.add_argument("--splitters-only", action="store_true", help="only rebuild the sentence splitters")
    p.add_argument("--verify", action="store_true", help="only check the packages in --out on every kernel")
    p.add_argument("--decode", nargs=2, metavar=("MODEL_DIR", "SRC"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.decode:  # the child of verify(): prints one JSON line
        print(json.dumps(decode_all(Path(args.decode[0]), args.decode[1]), ensure_ascii=False))
        return
    if args.verify:
        verify_packages(args.out)
        return
    if args.splitters_only:
        replace_splitters(args.out)
        return
    pairs = [tuple(x.split("-")) for x in args.pair] if args.pair else PAIRS
    rows = phrases()
    for s, t in pairs:
        print("built", build_pair(s, t, rows, args.out))


if __name__ == "__main__":
    main()
