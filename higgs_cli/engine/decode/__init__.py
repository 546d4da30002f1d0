"""The decode: choosing frames (sampling, the counter-based rng), the slot table on the device, one
decode step (eager, compiled, a CUDA graph, the AOT batch-1 step), the continuous-batching loop, the
scheduler's tickets and the streaming chunk decoder."""
