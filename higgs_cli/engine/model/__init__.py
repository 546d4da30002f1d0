"""The model: where it runs (placement), its forward pass over a static KV cache, the audio codec and its
Snake activation, the delay pattern of the codebooks, and the prompt (with the chat template)."""
