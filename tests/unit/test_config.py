"""Config loading: precedence, overrides and the errors users see."""

from pathlib import Path

import pytest
import yaml

from aidentify.config import STAGE_CONFIGS, CleanConfig, EvaluateConfig, LiveConfig, PrepareConfig, load_config
from aidentify.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("stage", sorted(STAGE_CONFIGS))
def test_shipped_yaml_equals_the_code_defaults(stage):
    model = STAGE_CONFIGS[stage]
    from_yaml, _ = load_config(model, CONFIG_DIR / f"{stage}.yaml")
    assert from_yaml == model()


@pytest.mark.parametrize("stage", sorted(STAGE_CONFIGS))
def test_every_key_in_shipped_yaml_has_a_comment(stage):
    for line in (CONFIG_DIR / f"{stage}.yaml").read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        assert "#" in line, f"{stage}.yaml: no comment on {line!r}"


def test_unknown_key_names_the_closest_valid_key(tmp_path):
    path = tmp_path / "clean.yaml"
    path.write_text("dedup:\n  max_distnce: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(CleanConfig, path)
    assert "unknown key 'dedup.max_distnce'" in str(err.value)
    assert "did you mean 'dedup.max_distance'" in str(err.value)


def test_unknown_top_level_key_from_set():
    with pytest.raises(ConfigError, match="did you mean 'image_size'"):
        load_config(PrepareConfig, None, ["imge_size=64"])


def test_wrong_type_names_key_and_expected_type(tmp_path):
    path = tmp_path / "prepare.yaml"
    path.write_text("image_size: big\n")
    with pytest.raises(ConfigError) as err:
        load_config(PrepareConfig, path)
    message = str(err.value)
    assert "'image_size'" in message and "integer" in message and "'big'" in message


def test_precedence_defaults_yaml_set_option(tmp_path):
    path = tmp_path / "prepare.yaml"
    path.write_text("image_size: 64\nworkers: 3\nfaces:\n  margin: 0.1\n")
    cfg, origin = load_config(PrepareConfig, path, ["image_size=80", "faces.margin=0.3"], {"image_size": 48, "workers": None})
    assert origin == str(path)
    assert cfg.image_size == 48          # named option beats --set
    assert cfg.faces.margin == 0.3       # --set beats YAML
    assert cfg.workers == 3              # YAML beats defaults; None options are skipped
    assert cfg.faces.haar.min_neighbors == 5  # default


def test_set_values_are_yaml_scalars_never_evaluated():
    cfg, _ = load_config(CleanConfig, None, ["sources=[ferplus]", "dedup.enabled=false"])
    assert cfg.sources == ["ferplus"] and cfg.dedup.enabled is False
    with pytest.raises(ConfigError):
        load_config(CleanConfig, None, ["min_std=__import__('os').getcwd()"])


def test_test_time_zooms_are_fractions_of_the_side():
    cfg, _ = load_config(LiveConfig, None, ["tta_zooms=[0.96, 0.83]"])
    assert cfg.tta_zooms == [0.96, 0.83]
    for bad in ("[1.5]", "[0.3]", "0.9"):
        with pytest.raises(ConfigError, match="tta_zooms"):
            load_config(EvaluateConfig, None, [f"tta_zooms={bad}"])


def test_set_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="key=value"):
        load_config(CleanConfig, None, ["dedup.enabled"])


def test_default_stage_file_in_working_directory_is_used(workdir):
    (workdir / "configs").mkdir()
    (workdir / "configs" / "prepare.yaml").write_text("image_size: 40\n")
    cfg, origin = load_config(PrepareConfig, None, stage="prepare")
    assert cfg.image_size == 40 and origin.endswith("prepare.yaml")


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(CleanConfig, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("dedup: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(CleanConfig, bad)
    listing = tmp_path / "list.yaml"
    listing.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ConfigError, match="mapping"):
        load_config(CleanConfig, listing)


@pytest.mark.parametrize("path", sorted(p.relative_to(CONFIG_DIR) for p in CONFIG_DIR.glob("*/**/*.yaml")))
def test_preset_yaml_files_are_valid_and_commented(path):
    stage = path.stem
    assert stage in STAGE_CONFIGS, f"{path}: not named after a stage"
    config, _ = load_config(STAGE_CONFIGS[stage], CONFIG_DIR / path)
    assert config != STAGE_CONFIGS[stage]()  # a preset that changes nothing is a mistake
    for line in (CONFIG_DIR / path).read_text().splitlines():
        assert not line.strip() or "#" in line, f"{path}: no comment on {line!r}"


def test_an_unknown_section_from_set_is_blamed_on_that_set():
    from aidentify.config import LiveConfig

    with pytest.raises(ConfigError) as err:
        load_config(LiveConfig, None, ["nosuch.key=1"])
    assert str(err.value).startswith("unknown key 'nosuch' in --set nosuch.key=1 (valid keys: "), err.value
    with pytest.raises(ConfigError) as err:
        load_config(LiveConfig, None, ["detect.min_fase=1"])
    assert str(err.value) == "unknown key 'detect.min_fase' in --set detect.min_fase=1; did you mean 'detect.min_face'?"


def test_a_weak_match_is_not_suggested_but_listed():
    from aidentify.config import ServeConfig

    with pytest.raises(ConfigError) as err:
        load_config(ServeConfig, None, ["nosuch=1"])
    assert "did you mean" not in str(err.value) and "(valid keys: host, port" in str(err.value), err.value
    with pytest.raises(ConfigError, match="did you mean 'source'"):
        load_config(ServeConfig, None, ["sorce=1"])


def test_a_config_path_that_is_a_folder_says_so(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(CleanConfig, tmp_path)
    assert str(err.value) == f"--config {tmp_path} is a folder, not a YAML file; give the path of a .yaml file"


@pytest.mark.parametrize("data, said", [
    ("raw_dir: données\n".encode("latin-1"), "bad.yaml is not UTF-8 text (it holds byte 0xE9, which UTF-8 never "
                                             "has there); save it as UTF-8 and try again"),
    ("raw_dir: données\n".encode("utf-16"), "bad.yaml is UTF-16 text, not UTF-8; save it as UTF-8 and try again"),
], ids=["latin-1", "utf-16"])
def test_a_yaml_config_not_in_utf8_gets_no_spreadsheet_advice(data, said, tmp_path):
    (tmp_path / "bad.yaml").write_bytes(data)
    with pytest.raises(ConfigError) as err:
        load_config(CleanConfig, tmp_path / "bad.yaml")
    assert str(err.value) == f"{tmp_path / said}", err.value
    assert "Excel" not in str(err.value)


def test_a_span_in_set_is_not_read_as_base_60():
    from aidentify.config import AnalyzeConfig

    config, _ = load_config(AnalyzeConfig, None, ["baseline=10:20"])
    assert config.baseline_span == (10.0, 20.0)  # YAML 1.1 alone would give the int 620
