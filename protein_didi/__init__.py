"""protein_didi: few-step protein sequence generation by distilling masked diffusion LMs."""

__version__ = "0.1.0"
