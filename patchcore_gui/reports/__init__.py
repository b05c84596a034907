"""Everything that writes results: reports (HTML / PDF / CSV), their pictures, predict CSV and maps."""
