"""Reports: training curves; ROC/DET plots, score histograms and metrics tables."""
