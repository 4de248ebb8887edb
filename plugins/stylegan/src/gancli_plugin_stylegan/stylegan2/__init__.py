"""StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN"), config E/F.

The family ``stylegan2`` of the stylegan plugin: modulated convolutions with weight
demodulation, a skip generator and a residual discriminator (:mod:`.networks`, layers in
:mod:`.layers`), lazy R1 and path-length regularization (:mod:`.objective`). The mapping
network, W-space sampling, truncation and style mixing are the stylegan family's.
"""
