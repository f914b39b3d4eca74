"""Tiny randomly initialized speech encoders of each architecture, saved with save_pretrained
(and a feature extractor) into a folder: the real loading, batching and pooling paths run on
them, and nothing is downloaded.

Two transformer layers of width 32, and wav2vec 2.0's real convolutional front end (400
samples of receptive field, 320 per frame) but 16 channels wide; Whisper's encoder on a 2 s
window (100 frames) instead of 30 s.
"""

from __future__ import annotations

from pathlib import Path

WIDTH = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
CONVS = dict(conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
WHISPER_WINDOW_S = 2


def tiny_config(kind: str):
    """The transformers configuration of a tiny ``kind`` encoder (ARCHITECTURES' names, and
    "wav2vec2-layer": wav2vec 2.0 with the large models' layer norms)."""
    import transformers as t

    if kind == "wav2vec2":
        return t.Wav2Vec2Config(**WIDTH, **CONVS)  # group norm over time, as wav2vec2-base
    if kind == "wav2vec2-layer":
        return t.Wav2Vec2Config(
            **WIDTH, **CONVS, feat_extract_norm="layer", do_stable_layer_norm=True
        )
    if kind == "hubert":
        return t.HubertConfig(**WIDTH, **CONVS)
    if kind == "wavlm":
        return t.WavLMConfig(**WIDTH, **CONVS, num_buckets=16, max_bucket_distance=50)
    if kind == "data2vec-audio":
        return t.Data2VecAudioConfig(
            **WIDTH, conv_dim=(16,) * 7, num_conv_pos_embeddings=3, conv_pos_kernel_size=5,
            num_conv_pos_embedding_groups=4,
        )  # fmt: skip
    if kind == "whisper":
        return t.WhisperConfig(
            d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80,
            max_source_positions=50 * WHISPER_WINDOW_S, max_target_positions=16, vocab_size=64,
            pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1,
        )  # fmt: skip
    raise ValueError(kind)


def save_tiny_encoder(kind: str, folder: Path, seed: int = 0) -> Path:
    """A tiny ``kind`` encoder with random weights (``seed``) and its feature extractor,
    written into ``folder`` by save_pretrained."""
    import torch
    import transformers as t

    torch.manual_seed(seed)
    model = t.AutoModel.from_config(tiny_config(kind))
    if kind == "whisper":
        extractor = t.WhisperFeatureExtractor(feature_size=80, chunk_length=WHISPER_WINDOW_S)
    else:  # wav2vec2-base's: normalizes each clip; attention masks as the large models'
        extractor = t.Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True)
    model.save_pretrained(folder)
    extractor.save_pretrained(folder)
    return folder


KINDS = ("wav2vec2", "wav2vec2-layer", "hubert", "wavlm", "data2vec-audio", "whisper")
