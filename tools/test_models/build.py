"""Build tiny but REAL Argos Translate packages for tests and the demo.

Each package is a genuine .argosmodel: a CTranslate2 model (a one-layer
Marian transformer, converted int8), a SentencePiece model and a MiniSBD
ONNX sentence splitter, so argostranslate loads and runs it exactly as it
runs a real language pack. The models only know the phrases in
workers/test_models/phrases.tsv: anything else comes out as nonsense, and the demo says so.

Needs `transformers` and `onnx` besides the project (not needed to *use*
the packages):

    .venv/bin/pip install transformers onnx
    .venv/bin/python tools/test_models/build.py          # writes workers/test_models/*.argosmodel
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent.parent / "workers" / "test_models"
PAIRS = [("en", "ru"), ("ru", "en"), ("es", "en"), ("en", "de")]
NAMES = {"en": "English", "ru": "Russian", "es": "Spanish", "de": "German"}
PACKAGE_VERSION = "0.1-test"


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
    optim = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for step in range(1500):
        noisy = dec_in.clone()
        mask = (torch.rand(noisy.shape) < 0.1) & (noisy != pad)
        noisy[mask] = torch.randint(2, pad, (int(mask.sum()),))
        out = model(input_ids=input_ids, attention_mask=attn, decoder_input_ids=noisy, labels=labels)
        optim.zero_grad()
        out.loss.backward()
        optim.step()
        with torch.no_grad():
            emb[pad].zero_()  # CTranslate2 starts decoding from a zero embedding
        if step % 100 == 99 and out.loss.item() < 0.01:
            break
    model.eval()
    model.save_pretrained(model_dir, safe_serialization=True)
    tokenizer.save_pretrained(model_dir)
    return model_dir


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


def build_pair(src_code: str, tgt_code: str, rows: list[dict[str, str]], out: Path) -> Path:
    import ctranslate2

    src, tgt = [r[src_code] for r in rows], [r[tgt_code] for r in rows]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        top = work / f"translate-{src_code}_{tgt_code}-test"
        top.mkdir()
        train_sentencepiece(src + tgt, work / "sp", vocab_size=400)
        shutil.copy(work / "sp.model", top / "sentencepiece.model")
        model_dir = train_marian(src, tgt, work / "sp.model", work, seed=11)
        ctranslate2.converters.TransformersConverter(str(model_dir)).convert(str(top / "model"), quantization="int8")
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
    args = p.parse_args()
    if args.splitters_only:
        replace_splitters(args.out)
        return
    pairs = [tuple(x.split("-")) for x in args.pair] if args.pair else PAIRS
    rows = phrases()
    for s, t in pairs:
        print("built", build_pair(s, t, rows, args.out))


if __name__ == "__main__":
    main()
