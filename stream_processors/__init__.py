"""Stream processing around the domain core: the embedded processor and the faust agents."""
