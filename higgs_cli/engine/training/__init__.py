"""Training steps on the model (LoRA through peft; data-parallel runs through accelerate are not built yet), and
applying a trained adapter when a voice speaks. Imports torch: load it inside functions from
outside the engine."""
