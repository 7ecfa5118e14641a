"""Plain ``nn.Module`` builders: no Lightning, no file formats."""
