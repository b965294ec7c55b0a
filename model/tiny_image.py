"""Tiny random image diffusion stacks (SD 1.5 / SDXL + depth ControlNet + IP-Adapter) for tests and the
demo, written as real stack folders (layout of model/stacks/{sd15,sdxl}_depth_ip.yaml). Registered in
model/tiny.py as ``sd15_depth_ip`` and ``sdxl_depth_ip``; nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

SEED = 0


def _clip_tokenizer(folder: Path) -> None:
    """A CLIP BPE tokenizer (byte-level alphabet, a few merges) written as vocab.json + merges.txt, then
    loaded back with ``from_pretrained(folder)`` (transformers 5 ignores vocab_file=/merges_file=)."""
    import json

    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    # GPT-2/CLIP byte-to-unicode alphabet: printable bytes map to themselves, the rest to U+0100..
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    alphabet = [chr(b) for b in printable] + [chr(256 + i) for i in range(256 - len(printable))]
    merges = [("a", "n"), ("t", "h"), ("e", "r"), ("i", "n"), ("o", "n")]
    tokens = alphabet + [c + "</w>" for c in alphabet] + [a + b for a, b in merges] + [a + b + "</w>" for a, b in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    tok = CLIPTokenizer.from_pretrained(folder, model_max_length=77, pad_token="<|endoftext|>")
    tok.save_pretrained(folder)


def _random_zero_convs(controlnet, scale: float = 0.05) -> None:
    """``ControlNetModel.from_unet`` zero-initialises its output convolutions (no effect until trained):
    give them small random weights so the depth control visibly steers the tiny model."""
    import torch

    with torch.no_grad():
        for block in list(controlnet.controlnet_down_blocks) + [controlnet.controlnet_mid_block]:
            block.weight.normal_(0.0, scale)
            block.bias.normal_(0.0, scale)


def _ip_adapter_weights(unet, image_embed_dim: int) -> dict:
    """IP-Adapter weights in the layout ``load_ip_adapter`` reads: ``image_proj.proj/norm`` and
    ``ip_adapter.{1,3,5..}.to_k_ip/to_v_ip`` (one odd id per cross-attention processor, in order)."""
    import torch

    cad = unet.config.cross_attention_dim
    boc = list(unet.config.block_out_channels)
    sd = {"image_proj.proj.weight": torch.randn(4 * cad, image_embed_dim) * 0.05,
          "image_proj.proj.bias": torch.zeros(4 * cad),
          "image_proj.norm.weight": torch.ones(cad), "image_proj.norm.bias": torch.zeros(cad)}
    key_id = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = boc[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(boc))[int(name[len("up_blocks.")])]
        else:
            hidden = boc[int(name[len("down_blocks.")])]
        sd[f"ip_adapter.{key_id}.to_k_ip.weight"] = torch.randn(hidden, cad) * 0.05
        sd[f"ip_adapter.{key_id}.to_v_ip.weight"] = torch.randn(hidden, cad) * 0.05
        key_id += 2
    return sd


def _build_image_stack(out_dir: Path, xl: bool) -> Path:
    """A whole image stack folder (layout of ``model/stacks/{sd15,sdxl}_depth_ip.yaml``) with random
    weights: UNet (2 blocks), 4-block VAE (8x like the real one), CLIP text encoder(s) + tokenizer(s),
    DDIM scheduler, a depth ControlNet from the UNet, an IP-Adapter and its CLIP image encoder."""
    import torch
    from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import (CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPVisionConfig,
                              CLIPVisionModelWithProjection)

    text_cfg = dict(bos_token_id=0, eos_token_id=2, hidden_size=32, intermediate_size=37, layer_norm_eps=1e-5,
                    num_attention_heads=4, num_hidden_layers=2, pad_token_id=1, vocab_size=1000,
                    max_position_embeddings=77)
    unet_kw = dict(block_out_channels=(16, 32), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
                   down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                   up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), norm_num_groups=8)
    if xl:
        unet_kw.update(cross_attention_dim=64, attention_head_dim=(2, 4), use_linear_projection=True,
                       addition_embed_type="text_time", addition_time_embed_dim=8,
                       transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=80)
    else:
        unet_kw.update(cross_attention_dim=32, attention_head_dim=4)
    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(**unet_kw)
    unet.save_pretrained(out_dir / "unet", safe_serialization=True)
    torch.manual_seed(SEED)
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16, 16, 16))
    _random_zero_convs(controlnet)
    controlnet.save_pretrained(out_dir / "controlnet", safe_serialization=True)
    torch.manual_seed(SEED)
    vae = AutoencoderKL(block_out_channels=(8, 16, 16, 16), in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        layers_per_block=1, norm_num_groups=8, sample_size=64)
    vae.save_pretrained(out_dir / "vae", safe_serialization=True)
    torch.manual_seed(SEED)
    CLIPTextModel(CLIPTextConfig(**text_cfg)).save_pretrained(out_dir / "text_encoder", safe_serialization=True)
    _clip_tokenizer(out_dir / "tokenizer")
    if xl:
        torch.manual_seed(SEED)
        CLIPTextModelWithProjection(CLIPTextConfig(**text_cfg, projection_dim=32)).save_pretrained(
            out_dir / "text_encoder_2", safe_serialization=True)
        _clip_tokenizer(out_dir / "tokenizer_2")
    DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                  set_alpha_to_one=False, steps_offset=1).save_pretrained(out_dir / "scheduler")
    torch.manual_seed(SEED)
    enc = CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=32, projection_dim=32, num_hidden_layers=2,
                                                         num_attention_heads=4, image_size=32, patch_size=4,
                                                         intermediate_size=37))
    enc.save_pretrained(out_dir / "ip_adapter" / "models" / "image_encoder", safe_serialization=True)
    torch.manual_seed(SEED)
    sub, weight = ("sdxl_models", "ip-adapter_sdxl_vit-h.safetensors") if xl else ("models", "ip-adapter_sd15.safetensors")
    (out_dir / "ip_adapter" / sub).mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in _ip_adapter_weights(unet, 32).items()},
              str(out_dir / "ip_adapter" / sub / weight))
    return out_dir


def build_sd15_depth_ip(out_dir: Path) -> Path:
    """Tiny random ``sd15_depth_ip`` stack (see ``model/stacks/sd15_depth_ip.yaml``)."""
    return _build_image_stack(out_dir, xl=False)


def build_sdxl_depth_ip(out_dir: Path) -> Path:
    """Tiny random ``sdxl_depth_ip`` stack (see ``model/stacks/sdxl_depth_ip.yaml``)."""
    return _build_image_stack(out_dir, xl=True)


def build_sd15_depth_ip_fp16(out_dir: Path) -> Path:
    """The tiny ``sd15_depth_ip`` stack as a user who fetched only the ``fp16`` variant files has it: the
    UNet, VAE, text encoder and ControlNet weights as ``*.fp16.safetensors`` (half-precision tensors) and
    no full-precision file."""
    from safetensors.torch import load_file, save_file

    _build_image_stack(out_dir, xl=False)
    for folder, name in (("unet", "diffusion_pytorch_model"), ("vae", "diffusion_pytorch_model"),
                         ("text_encoder", "model"), ("controlnet", "diffusion_pytorch_model")):
        full = out_dir / folder / f"{name}.safetensors"
        tensors = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in load_file(str(full)).items()}
        save_file(tensors, str(out_dir / folder / f"{name}.fp16.safetensors"), metadata={"format": "pt"})
        full.unlink()
    return out_dir
