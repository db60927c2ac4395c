"""Training of the built-in classifiers: standard, FGSM-RS (Wong et al. 2020) and PGD (Madry et al.)."""
