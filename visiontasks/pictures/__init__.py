"""Pictures of predictions: drawing primitives shared by results, run-folder plots and W&B overlays."""
