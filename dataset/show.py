"""Pictures of an episode: a contact sheet or a video, the actions plotted under the frames.

Needs matplotlib (imported here only, so the rest of the package does not).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dataset import video


def _plot_actions(ax, action: np.ndarray, t: np.ndarray, names: list[str]) -> None:
    for i, name in enumerate(names):
        ax.plot(t, action[:, i], label=name, linewidth=1.2)
    ax.set_xlim(t[0], t[-1] if len(t) > 1 else t[0] + 1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("action")
    ax.grid(alpha=0.3)
    ax.legend(ncol=len(names), fontsize=7, loc="upper center", bbox_to_anchor=(0.5, 1.18),
              frameon=False)


def contact_sheet(frames: dict[str, np.ndarray], action: np.ndarray, t: np.ndarray,
                  names: list[str], title: str, out: Path, n: int = 8) -> None:
    """A grid of n evenly spaced frames per camera, the action plot below marking them."""
    import matplotlib.pyplot as plt

    picks = np.unique(np.round(np.linspace(0, len(t) - 1, n)).astype(int))
    rows = len(frames)
    fig = plt.figure(figsize=(1.6 * len(picks), 1.7 * rows + 2.6), dpi=100)
    grid = fig.add_gridspec(rows + 1, len(picks), height_ratios=[1] * rows + [1.4])
    for r, (key, clip) in enumerate(frames.items()):
        for c, k in enumerate(picks):
            ax = fig.add_subplot(grid[r, c])
            ax.imshow(clip[k])
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(key.rsplit(".", 1)[-1])
            if r == 0:
                ax.set_title(f"t={t[k]:.2f}s", fontsize=8)
    ax = fig.add_subplot(grid[rows, :])
    _plot_actions(ax, action, t, names)
    for k in picks:
        ax.axvline(t[k], color="k", alpha=0.15)
    fig.suptitle(title, fontsize=9)
    fig.savefig(out)
    plt.close(fig)


def episode_video(frames: dict[str, np.ndarray], action: np.ndarray, t: np.ndarray,
                  names: list[str], title: str, fps: int, out: Path, scale: int = 2) -> None:
    """Cameras side by side (upscaled) over the action plot with a moving time cursor."""
    import matplotlib.pyplot as plt

    top = np.concatenate(list(frames.values()), axis=2)  # (T, H, W * cams, 3)
    top = top.repeat(scale, axis=1).repeat(scale, axis=2)
    width = top.shape[2] - top.shape[2] % 2
    fig, ax = plt.subplots(figsize=(width / 100, 2.4), dpi=100)
    _plot_actions(ax, action, t, names)
    ax.set_title(title, fontsize=7, pad=22)
    fig.tight_layout()
    fig.canvas.draw()
    plot = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    # Pixel column of each frame's time on the rendered plot (display y is bottom-up).
    xs = [int(round(ax.transData.transform((ti, 0))[0])) for ti in t]
    y0, y1 = ax.bbox.y0, ax.bbox.y1
    plt.close(fig)
    h = plot.shape[0]
    rows = slice(int(h - y1), int(h - y0))

    def composed():
        for k in range(len(t)):
            panel = plot[:, :width].copy()
            panel[rows, max(0, xs[k] - 1):xs[k] + 1] = (220, 30, 30)
            image = np.concatenate([top[k, :, :width], panel], axis=0)
            yield image[: image.shape[0] - image.shape[0] % 2]

    video.encode(composed(), out, fps, video.VideoConfig(codec="h264", gop=fps, crf=23))
