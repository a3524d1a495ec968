"""QR codes and print sheets for units' links."""
