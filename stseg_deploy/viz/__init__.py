"""Pictures: the flow colour wheel, label overlays, contact sheets."""
