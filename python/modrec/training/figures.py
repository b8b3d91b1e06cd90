"""matplotlib for the training side's figures, headless (the Agg backend) on clusters and in CI."""


def pyplot():
    """matplotlib.pyplot on the Agg backend (imported on first use: plotting is optional)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
