"""PyTorch baselines for the benchmarks (StyleGAN2 written here; BigGAN is pytorch-pretrained-biggan)."""
