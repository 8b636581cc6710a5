import cv2
import numpy as np
import pytest

from maskapp.errors import DataError
from maskapp.training.data import difference_hash, group_near_duplicates, scan_dataset, split_samples
from tests.conftest import TWELVE_K, TWO_CLASS, make_class_folders, real_images


def _split(folders, seed=7):
    return split_samples(folders, seed=seed, fractions=(0.65, 0.15, 0.20), max_hash_distance=20)


def test_resized_and_reencoded_copies_stay_on_one_side(tmp_path):
    data = make_class_folders(tmp_path / "data", per_class=20)
    for label in ("with_mask", "without_mask"):
        for original in real_images(TWO_CLASS, label, 5):
            image = cv2.imread(str(original))
            smaller = cv2.resize(image, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
            cv2.imwrite(
                str(data / label / f"copy_{original.stem}.jpg"), smaller, [cv2.IMWRITE_JPEG_QUALITY, 70]
            )
    split = _split([data])
    side_of = {s.path.name: name for name in ("train", "val", "test") for s in split.of(name)}
    copies = [name for name in side_of if name.startswith("copy_")]
    assert len(copies) == 10
    for copy in copies:
        assert side_of[copy] == side_of[copy.removeprefix("copy_")]
    assert split.near_duplicate_groups >= 10


def test_real_two_class_split_has_no_near_duplicates_across_splits():
    split = _split([TWO_CLASS], seed=42)
    hashes = {name: np.stack([difference_hash(s.path) for s in split.of(name)]) for name in ("train", "test")}
    closest = min(np.bitwise_count(hashes["train"] ^ row).sum(axis=1).min() for row in hashes["test"])
    assert closest > 20
    total = sum(len(split.of(n)) for n in ("train", "val", "test"))
    assert 0.6 < len(split.train) / total < 0.7


def test_split_is_seeded(tmp_path):
    data = make_class_folders(tmp_path / "data", per_class=15)
    first, again, other = _split([data], 1), _split([data], 1), _split([data], 2)
    assert [s.path for s in first.test] == [s.path for s in again.test]
    assert [s.path for s in first.test] != [s.path for s in other.test]


def test_given_split_is_kept():
    samples = scan_dataset(TWELVE_K)
    assert {s.given_split for s in samples} == {"train", "val", "test"}
    assert all(s.path.parent.parent.name in ("train", "validation", "test") for s in samples)


def test_near_duplicate_grouping_needs_close_hashes():
    base = np.array([0, 0, 0, 0], dtype=np.uint64)
    near = np.array([0b111, 0, 0, 0], dtype=np.uint64)
    far = np.array([2**64 - 1, 0, 0, 0], dtype=np.uint64)
    groups = group_near_duplicates([base, near, far, None], max_distance=5)
    assert groups[0] == groups[1] != groups[2]
    assert groups[3] not in groups[:3]


def test_folder_without_class_subfolders_is_refused(tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "photo.jpg").symlink_to(real_images(TWO_CLASS, "with_mask", 1)[0])
    with pytest.raises(DataError, match="no class subfolders"):
        scan_dataset(tmp_path / "flat")


def test_empty_class_is_refused(tmp_path):
    make_class_folders(tmp_path / "data", per_class=3)
    for image in (tmp_path / "data" / "without_mask").iterdir():
        image.unlink()
    with pytest.raises(DataError, match="holds no images"):
        scan_dataset(tmp_path / "data")


def test_missing_folder_is_refused(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        scan_dataset(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "manifest",
    [
        "name,class\nx.png,with_mask\n",  # no 'file' column
        "file,face_x1,face_y1,face_x2,face_y2\nwith_mask/a.png,abc,1,2,3\n",  # a box that is no number
        "file,face_x1,face_y1,face_x2,face_y2\nwith_mask/a.png,nan,1,2,3\n",
    ],
)
def test_a_manifest_of_another_format_is_one_clear_error(tmp_path, manifest):
    make_class_folders(tmp_path / "data", per_class=3)
    (tmp_path / "data" / "manifest.csv").write_text(manifest)
    with pytest.raises(DataError, match=r"manifest\.csv .*allowed: a UTF-8 CSV with a 'file' column"):
        scan_dataset(tmp_path / "data")


def test_a_manifest_saved_by_a_spreadsheet_with_a_byte_order_mark_is_read(tmp_path):
    make_class_folders(tmp_path / "data", per_class=3)
    first = sorted((tmp_path / "data" / "with_mask").iterdir())[0].name
    (tmp_path / "data" / "manifest.csv").write_text(f"file,source_photo\nwith_mask/{first},p1\n", "utf-8-sig")
    samples = scan_dataset(tmp_path / "data")
    assert [s.source_photo for s in samples if s.path.name == first] == ["p1"]
