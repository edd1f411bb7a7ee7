"""Exact and near-duplicate images: find them, and keep one of each group.

A duplicate across splits would leak a test image into training, so each
group keeps its copy in the most protected split (test > val > train).
Exact duplicates share their pixels' MD5; near duplicates have 64-bit
perceptual hashes within ``max_distance`` bits of each other.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aidentify.data.manifest import record_drop

SPLIT_PRIORITY = {"test": 0, "val": 1, "train": 2, "": 3}


class _UnionFind:
    def __init__(self, n: int):
        self.parent = np.arange(n)

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def near_duplicate_pairs(hashes: np.ndarray, max_distance: int) -> list[tuple[int, int, int]]:
    """Pairs (i, j, distance) of 64-bit hashes at Hamming distance <= max_distance.

    Pigeonhole trick: split the hash into max_distance + 1 blocks; two hashes
    within that distance share at least one identical block, so only hashes
    sharing a block are compared. Scales to hundreds of thousands of images.
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    blocks = max_distance + 1
    edges = np.linspace(0, 64, blocks + 1).astype(int)
    pairs: set[tuple[int, int]] = set()
    found = []
    for b in range(blocks):
        width = edges[b + 1] - edges[b]
        keys = (hashes >> np.uint64(edges[b])) & np.uint64((1 << width) - 1)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        ends = np.r_[starts[1:], len(order)]
        for start, end in zip(starts, ends):
            if end - start < 2:
                continue
            members = order[start:end]
            group = hashes[members]
            distances = _popcount(group[:, None] ^ group[None, :])
            ii, jj = np.nonzero(np.triu(distances <= max_distance, k=1))
            for a, c in zip(ii, jj):
                pair = (int(members[a]), int(members[c]))
                pair = (min(pair), max(pair))
                if pair not in pairs:
                    pairs.add(pair)
                    found.append((*pair, int(distances[a, c])))
    return found


def _popcount(values: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values)
    as_bytes = values.view(np.uint8).reshape(*values.shape, 8)
    return np.unpackbits(as_bytes, axis=-1).sum(axis=-1)


def drop_duplicates(frame: pd.DataFrame, max_distance: int, drops) -> pd.DataFrame:
    """Keep one image per duplicate group, preferring test, then val, then train.

    ``frame`` needs ``id``, ``split``, ``md5`` and ``phash_int`` (64-bit)
    columns; dropped rows go to ``drops`` with the keeper they duplicate.
    """
    roots, kind = _duplicate_groups(frame, max_distance)
    priority = frame["split"].map(SPLIT_PRIORITY).fillna(3).to_numpy()
    order = np.lexsort((frame["id"].to_numpy(), priority, roots))
    return _keep_first_of_each_group(frame, roots, kind, order, drops)


def add_distinct(kept: pd.DataFrame, extra: pd.DataFrame, max_distance: int, drops) -> pd.DataFrame:
    """``kept`` whole, plus the rows of ``extra`` that duplicate no kept row (one per group).

    For rows that must never displace ``kept`` rows as a group's keeper,
    nor join two kept rows into one group: the kept rows stay as they are.
    """
    both = pd.concat([kept, extra], ignore_index=True)
    roots, kind = _duplicate_groups(both, max_distance)
    extra_order = len(kept) + np.argsort(extra["id"].to_numpy(), kind="stable")
    order = np.r_[np.arange(len(kept)), extra_order]
    return _keep_first_of_each_group(both, roots, kind, order, drops, always_keep=len(kept))


def _duplicate_groups(frame: pd.DataFrame, max_distance: int) -> tuple[np.ndarray, dict[int, str]]:
    """Each row's group (exact or near duplicates, joined transitively) and how it duplicates."""
    uf = _UnionFind(len(frame))
    kind: dict[int, str] = {}
    for _, members in frame.groupby("md5").indices.items():
        for other in members[1:]:
            uf.union(members[0], other)
            kind[int(other)] = "exact duplicate"
    for i, j, distance in near_duplicate_pairs(frame["phash_int"].to_numpy(dtype=np.uint64), max_distance):
        uf.union(i, j)
        kind.setdefault(j, f"near duplicate (hash distance {distance})")
        kind.setdefault(i, f"near duplicate (hash distance {distance})")
    return np.array([uf.find(i) for i in range(len(frame))]), kind


def _keep_first_of_each_group(frame: pd.DataFrame, roots: np.ndarray, kind: dict[int, str],
                              order: np.ndarray, drops, always_keep: int = 0) -> pd.DataFrame:
    """Keep the first row of each group in ``order``, and the first ``always_keep`` rows."""
    keeper_of_root: dict[int, int] = {}
    keep_mask = np.zeros(len(frame), dtype=bool)
    keep_mask[:always_keep] = True
    for idx in order:
        root = roots[idx]
        if idx < always_keep:
            keeper_of_root.setdefault(root, idx)
        elif root not in keeper_of_root:
            keeper_of_root[root] = idx
            keep_mask[idx] = True
    dropped_idx = np.flatnonzero(~keep_mask)
    ids = frame["id"].to_numpy()
    splits = frame["split"].to_numpy()
    details = [
        f"{kind.get(int(i), 'duplicate')} of {ids[keeper_of_root[roots[i]]]}"
        f" ({splits[keeper_of_root[roots[i]]] or 'no split'})"
        for i in dropped_idx
    ]
    record_drop(drops, frame.iloc[dropped_idx], "duplicate", details)
    return frame[keep_mask].reset_index(drop=True)
