"""Tiny random video stacks (Wan VACE, AnimateDiff + depth ControlNet + IP-Adapter) for tests.

Each builder writes a stack folder laid out exactly as the manifest in ``model/stacks/`` says (one
diffusers/transformers folder per component, configs + safetensors, the big components sharded with an
index like the real checkpoints), with random weights (fixed seeds) and tokenizers written locally from
a small vocabulary: nothing is downloaded. Registered in ``model/tiny.py``'s ``BUILDERS`` as
``wan_vace`` and ``animatediff_depth``.

Sizes follow diffusers' own fast tests (``tests/pipelines/wan/test_wan_vace.py``,
``tests/pipelines/animatediff/test_animatediff_video2video_controlnet.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

SEED = 0

#: a few words the tests' prompts use; everything else falls back to letters / byte pieces
_WORDS = ("a the of and in on with fire smoke sparks dragon creature red blue orange plain flat neutral grey "
          "background isolated studio photo blurry low quality").split()


def _t5_tokenizer(out_dir: Path) -> int:
    """A T5-style (sentencepiece Unigram) fast tokenizer from a tiny local vocabulary, saved as
    ``tokenizer.json`` + ``tokenizer_config.json``; returns the vocabulary size."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    pieces = ["<pad>", "</s>", "<unk>", "\u2581"] + [f"\u2581{w}" for w in _WORDS]
    pieces += list("abcdefghijklmnopqrstuvwxyz0123456789.,")
    vocab = [(p, -float(i)) for i, p in enumerate(pieces)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=2))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                      special_tokens=[("</s>", 1)])
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / "tokenizer.json"
    tok.save(str(raw))
    fast = T5TokenizerFast(tokenizer_file=str(raw), pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                           extra_ids=0, model_max_length=512)
    fast.save_pretrained(out_dir)
    return len(pieces)


def _clip_tokenizer(out_dir: Path) -> int:
    """A CLIP (byte-level BPE) tokenizer: ``vocab.json`` + ``merges.txt`` with the 256 byte symbols (plain
    and word-final), the two specials and merges for a few words; returns the vocabulary size."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    symbols = sorted(ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for s in symbols + [s + "</w>" for s in symbols]:
        vocab.setdefault(s, len(vocab))
    merges: list[tuple[str, str]] = []
    for word in _WORDS:  # left-to-right merges building each whole word
        cur = word[0]
        for i, ch in enumerate(word[1:], start=1):
            nxt = ch + ("</w>" if i == len(word) - 1 else "")
            merges.append((cur, nxt))
            cur = cur + nxt
            vocab.setdefault(cur, len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab.setdefault(special, len(vocab))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps(vocab))
    seen: set[tuple[str, str]] = set()
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges if not ((a, b) in seen or seen.add((a, b)))]
    (out_dir / "merges.txt").write_text("\n".join(lines) + "\n")
    tok = CLIPTokenizer.from_pretrained(out_dir, model_max_length=77)  # re-save: writes tokenizer_config.json
    tok.save_pretrained(out_dir)
    return len(vocab)


def build_wan_vace(out_dir: Path) -> Path:
    """A Wan 2.1 VACE stack (``model/stacks/wan_vace.yaml``): ``WanVACETransformer3DModel`` with 3 blocks
    (VACE blocks at 0 and 2), ``AutoencoderKLWan`` (8x spatial, 4x temporal compression like the real
    one), a 2-layer ``UMT5EncoderModel``, a local T5 tokenizer and the UniPC flow scheduler Wan ships."""
    import torch
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanVACETransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    out_dir = Path(out_dir)
    vocab_size = _t5_tokenizer(out_dir / "tokenizer")
    torch.manual_seed(SEED)
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=37, num_layers=2,
                                               num_heads=4, relative_attention_num_buckets=8))
    text_encoder.save_pretrained(out_dir / "text_encoder", safe_serialization=True, max_shard_size="40KB")
    torch.manual_seed(SEED)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    vae.save_pretrained(out_dir / "vae", safe_serialization=True)
    torch.manual_seed(SEED)
    transformer = WanVACETransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=3, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32, vace_layers=[0, 2], vace_in_channels=96)
    transformer.save_pretrained(out_dir / "transformer", safe_serialization=True, max_shard_size="150KB")
    UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0,
                            num_train_timesteps=1000).save_pretrained(out_dir / "scheduler")
    return out_dir


def _ip_adapter_state_dict(unet_motion, image_embed_dim: int, num_tokens: int = 4) -> dict:
    """IP-Adapter weights in the layout of h94/IP-Adapter's ``ip-adapter_sd15.safetensors``: the image
    projection, then ``to_k_ip``/``to_v_ip`` for each cross-attention processor, numbered 1, 3, 5, ... in
    ``attn_processors`` order, motion-module attention skipped (as diffusers'
    ``_convert_ip_adapter_attn_to_diffusers`` reads them)."""
    import torch

    cad = unet_motion.config.cross_attention_dim
    blocks = list(unet_motion.config.block_out_channels)
    g = torch.Generator().manual_seed(SEED)
    sd = {
        "image_proj.proj.weight": torch.randn(cad * num_tokens, image_embed_dim, generator=g) * 0.1,
        "image_proj.proj.bias": torch.zeros(cad * num_tokens),
        "image_proj.norm.weight": torch.ones(cad),
        "image_proj.norm.bias": torch.zeros(cad),
    }
    key_id = 1
    for name in unet_motion.attn_processors:
        if name.endswith("attn1.processor") or "motion_modules" in name:
            continue
        if name.startswith("mid_block"):
            hidden = blocks[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(blocks))[int(name[len("up_blocks.")])]
        else:
            hidden = blocks[int(name[len("down_blocks.")])]
        sd[f"ip_adapter.{key_id}.to_k_ip.weight"] = torch.randn(hidden, cad, generator=g) * 0.1
        sd[f"ip_adapter.{key_id}.to_v_ip.weight"] = torch.randn(hidden, cad, generator=g) * 0.1
        key_id += 2
    return sd


def build_animatediff_depth(out_dir: Path) -> Path:
    """An AnimateDiff stack (``model/stacks/animatediff_depth.yaml``): an SD 1.5-shaped UNet, VAE, CLIP text
    encoder and tokenizer, a ``MotionAdapter``, a depth ``ControlNetModel`` and an IP-Adapter (image
    projection + per-layer K/V, CLIP vision encoder) under ``ip_adapter/models/``."""
    import torch
    from diffusers import (AutoencoderKL, ControlNetModel, DDIMScheduler, MotionAdapter, UNet2DConditionModel,
                           UNetMotionModel)
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModelWithProjection

    out_dir = Path(out_dir)
    cad, blocks = 8, (8, 8)
    vocab_size = _clip_tokenizer(out_dir / "tokenizer")
    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(block_out_channels=blocks, layers_per_block=2, sample_size=8, in_channels=4,
                                out_channels=4, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=cad,
                                norm_num_groups=2)
    unet.save_pretrained(out_dir / "unet", safe_serialization=True)
    torch.manual_seed(SEED)
    controlnet = ControlNetModel(block_out_channels=blocks, layers_per_block=2, in_channels=4,
                                 down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), cross_attention_dim=cad,
                                 conditioning_embedding_out_channels=(8, 8), norm_num_groups=1)
    with torch.no_grad():  # zero-initialised output convolutions would make the control do nothing
        for block in list(controlnet.controlnet_down_blocks) + [controlnet.controlnet_mid_block]:
            block.weight.normal_(0.0, 0.05)
            block.bias.normal_(0.0, 0.05)
    controlnet.save_pretrained(out_dir / "controlnet", safe_serialization=True)
    torch.manual_seed(SEED)
    AutoencoderKL(block_out_channels=blocks, in_channels=3, out_channels=3,
                  down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
                  up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"], latent_channels=4, norm_num_groups=2,
                  ).save_pretrained(out_dir / "vae", safe_serialization=True)
    torch.manual_seed(SEED)
    CLIPTextModel(CLIPTextConfig(bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=1,
                                 hidden_size=cad, intermediate_size=37, layer_norm_eps=1e-5, num_attention_heads=4,
                                 num_hidden_layers=5, vocab_size=vocab_size, max_position_embeddings=77),
                  ).save_pretrained(out_dir / "text_encoder", safe_serialization=True)
    torch.manual_seed(SEED)
    adapter = MotionAdapter(block_out_channels=blocks, motion_layers_per_block=2, motion_norm_num_groups=2,
                            motion_num_attention_heads=4)
    adapter.save_pretrained(out_dir / "motion_adapter", safe_serialization=True)
    DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="linear", clip_sample=False,
                  timestep_spacing="linspace", steps_offset=1).save_pretrained(out_dir / "scheduler")
    # IP-Adapter: h94/IP-Adapter's models/ folder as ip_adapter/models/
    models = out_dir / "ip_adapter" / "models"
    torch.manual_seed(SEED)
    image_embed_dim = 8
    CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=8, intermediate_size=16, num_hidden_layers=2,
                                                   num_attention_heads=2, image_size=32, patch_size=8,
                                                   projection_dim=image_embed_dim),
                                  ).save_pretrained(models / "image_encoder", safe_serialization=True)
    motion_unet = UNetMotionModel.from_unet2d(unet, adapter)
    save_file(_ip_adapter_state_dict(motion_unet, image_embed_dim), str(models / "ip-adapter_sd15.safetensors"))
    return out_dir
