#!/usr/bin/env python3
"""Reference metrics on random maps with ties and masks with several regions.

Image / pixel AUROC: sklearn.metrics.roc_auc_score. AU-PRO@0.3: the MVTec AD evaluation code
(compute_pro + trapezoid, Bergmann & Sattlegger), with scipy.ndimage.label 8-connectivity. Legacy PRO:
the DFR-derived code of the STFPM/DCAM repositories (4000 thresholds, fpr <= 0.3, min-max rescaling,
sklearn.metrics.auc), with scipy's labelling in place of skimage's (same 8-connected components).

/usr/bin/python3 tools/make_metric_fixtures.py  ->  test/fixtures/metrics.json
"""
import base64
import json
import os

import numpy as np
from scipy.ndimage import label
from sklearn.metrics import auc, roc_auc_score

OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'metrics.json')


def trapezoid(x, y, x_max=None):
    x = np.array(x)
    y = np.array(y)
    finite_mask = np.logical_and(np.isfinite(x), np.isfinite(y))
    x = x[finite_mask]
    y = y[finite_mask]
    correction = 0.
    if x_max is not None:
        if x_max not in x:
            ins = np.searchsorted(x, x_max)
            assert 0 < ins < len(x)
            y_interp = y[ins - 1] + ((y[ins] - y[ins - 1]) * (x_max - x[ins - 1]) / (x[ins] - x[ins - 1]))
            correction = 0.5 * (y_interp + y[ins - 1]) * (x_max - x[ins - 1])
        mask = x <= x_max
        x = x[mask]
        y = y[mask]
    return np.sum(0.5 * (y[1:] + y[:-1]) * (x[1:] - x[:-1])) + correction


def compute_pro(anomaly_maps, ground_truth_maps):
    structure = np.ones((3, 3), dtype=int)
    num_ok_pixels = 0
    num_gt_regions = 0
    shape = (len(anomaly_maps), anomaly_maps[0].shape[0], anomaly_maps[0].shape[1])
    fp_changes = np.zeros(shape, dtype=np.uint32)
    pro_changes = np.zeros(shape, dtype=np.float64)
    for gt_ind, gt_map in enumerate(ground_truth_maps):
        labeled, n_components = label(gt_map, structure)
        num_gt_regions += n_components
        ok_mask = labeled == 0
        num_ok_pixels += np.sum(ok_mask)
        fp_changes[gt_ind, ok_mask] = 1
        for k in range(n_components):
            region_mask = labeled == (k + 1)
            pro_changes[gt_ind, region_mask] = 1. / np.sum(region_mask)
    anomaly_scores_flat = np.array(anomaly_maps).ravel()
    sort_idxs = np.argsort(anomaly_scores_flat).astype(np.uint32)[::-1]
    np.take(anomaly_scores_flat, sort_idxs, out=anomaly_scores_flat)
    anomaly_scores_sorted = anomaly_scores_flat
    fp_changes_sorted = np.take(fp_changes.ravel(), sort_idxs)
    pro_changes_sorted = np.take(pro_changes.ravel(), sort_idxs)
    np.cumsum(fp_changes_sorted, out=fp_changes_sorted)
    fp_changes_sorted = fp_changes_sorted.astype(np.float32, copy=False)
    np.divide(fp_changes_sorted, num_ok_pixels, out=fp_changes_sorted)
    fprs = fp_changes_sorted
    np.cumsum(pro_changes_sorted, out=pro_changes_sorted)
    np.divide(pro_changes_sorted, num_gt_regions, out=pro_changes_sorted)
    pros = pro_changes_sorted
    keep_mask = np.append(np.diff(anomaly_scores_sorted) != 0, np.True_)
    fprs = fprs[keep_mask]
    pros = pros[keep_mask]
    np.clip(fprs, a_min=None, a_max=1., out=fprs)
    np.clip(pros, a_min=None, a_max=1., out=pros)
    zero = np.array([0.])
    one = np.array([1.])
    return np.concatenate((zero, fprs, one)), np.concatenate((zero, pros, one))


def legacy_pro(scores, masks, max_step=4000, expect_fpr=0.3):
    max_th, min_th = scores.max(), scores.min()
    delta = (max_th - min_th) / max_step
    pros_mean, fprs = [], []
    labels = [label(m, np.ones((3, 3), dtype=int))[0] for m in masks]
    masks_neg = ~masks
    for step in range(max_step):
        thred = max_th - step * delta
        binary = scores > thred
        pro = []
        for i in range(len(binary)):
            for k in range(1, labels[i].max() + 1):
                region = labels[i] == k
                pro.append(np.logical_and(binary[i], region).sum() / region.sum())
        pros_mean.append(np.array(pro).mean())
        fprs.append(np.logical_and(masks_neg, binary).sum() / masks_neg.sum())
    pros_mean, fprs = np.array(pros_mean), np.array(fprs)
    idx = fprs <= expect_fpr
    rescale = lambda x: (x - x.min()) / (x.max() - x.min())
    return auc(rescale(fprs[idx]), rescale(pros_mean[idx]))


def blob_masks(rng, n, h, w):
    masks = np.zeros((n, h, w), dtype=bool)
    for i in range(n // 2, n):  # the first half are good images
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.integers(0, h), rng.integers(0, w)
            ry, rx = rng.integers(1, 5), rng.integers(1, 5)
            yy, xx = np.mgrid[0:h, 0:w]
            masks[i] |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        masks[i, rng.integers(0, h), rng.integers(0, w)] = True  # single-pixel regions too
    return masks


def main():
    rng = np.random.default_rng(7)
    cases = []
    for (n, h, w, levels) in [(8, 19, 23, 50), (6, 16, 16, 7), (10, 13, 11, 1000), (12, 40, 37, 300)]:
        masks = blob_masks(rng, n, h, w)
        # scores correlated with the masks, quantised so that many ties occur
        maps = rng.random((n, h, w)) + 0.35 * masks
        maps = (np.round(maps * levels) / levels).astype(np.float32)
        # image-level AUROC on its own scores: 41 images, heavy ties, overlapping classes
        img_labels = rng.integers(0, 2, 41)
        img_scores = (np.round(rng.random(41) * 6) / 6 + 0.3 * img_labels).astype(np.float32)
        fprs, pros = compute_pro(list(maps), list(masks))
        cases.append({
            'n': n, 'h': h, 'w': w,
            'maps': base64.b64encode(maps.astype('<f4').tobytes()).decode(),
            'masks': base64.b64encode(masks.astype(np.uint8).tobytes()).decode(),
            'image_scores': img_scores.tolist(), 'image_labels': img_labels.tolist(),
            'image_auroc': float(roc_auc_score(img_labels, img_scores)),
            'pixel_auroc': float(roc_auc_score(masks.ravel().astype(int), maps.ravel())),
            'aupro_03': float(trapezoid(fprs, pros, x_max=0.3) / 0.3),
            'legacy_pro': float(legacy_pro(maps, masks)),
        })
        print({k: v for k, v in cases[-1].items() if k not in ('maps', 'masks', 'image_scores', 'image_labels')})
    with open(OUT, 'w') as f:
        json.dump({'generator': 'tools/make_metric_fixtures.py', 'cases': cases}, f)


if __name__ == '__main__':
    main()
