"""TACCNN real/bogus network (diascan), standalone for the Rubin meas_transiNet pipeline.

Input (N, 3, 51, 51) float32 stamps [difference, science, template] in nJy; output (N, 1) scores
in [0, 1] (ends in a sigmoid). Same layer names and shapes as tac_cnn_comcam_2025-02-18.
"""

import torch
from torch import nn

# meas_transiNet imports the one class named in __all__ (a direct nn.Module subclass).
__all__ = ["TACCNN"]


class TACCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 5)
        self.conv2 = nn.Conv2d(16, 32, 5)
        self.conv3 = nn.Conv2d(32, 64, 5)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(0.4)
        self.fc1 = nn.Linear(64 * 2 * 2, 32)
        self.fc2 = nn.Linear(32, 1)

    def forward(self, x):
        x = self.drop(self.pool(torch.relu(self.conv1(x))))
        x = self.drop(self.pool(torch.relu(self.conv2(x))))
        x = self.drop(self.pool(torch.relu(self.conv3(x))))
        x = torch.flatten(x, 1)
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(x))))
