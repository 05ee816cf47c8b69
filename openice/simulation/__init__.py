"""A simulator calibrated on the real data sets: applicants, their true risk and their behaviour, day by day."""
