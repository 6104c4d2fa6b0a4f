from ml.training.plots import plot_training_curves, training_curves_figure


def history(epochs: int) -> list[dict]:
    return [
        {
            "epoch": epoch,
            "stage": 1 if epoch <= 2 else 2,
            "loss": 1 / epoch,
            "val_loss": 1.2 / epoch,
            "accuracy": 1 - 1 / (epoch + 1),
            "val_accuracy": 1 - 1.2 / (epoch + 1),
        }
        for epoch in range(1, epochs + 1)
    ]


def test_curve_plots_tick_whole_epochs_only(tmp_path):
    # Three epochs: matplotlib's default locator would tick 1.0, 1.25, 1.5, … 3.0.
    figure = training_curves_figure(history(3))
    figure.canvas.draw()

    for axes in figure.axes:
        ticks = [tick for tick in axes.get_xticks() if axes.get_xlim()[0] <= tick <= axes.get_xlim()[1]]
        assert ticks and all(float(tick).is_integer() for tick in ticks), ticks
    assert plot_training_curves(history(3), tmp_path / "curves.png").stat().st_size > 0
