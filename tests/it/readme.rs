//! What the README shows is what pipe accepts.

use std::path::Path;

use crate::env::TestEnv;

/// The first ```yaml block after `heading` in the README.
fn readme_yaml(heading: &str) -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let after = &readme[readme
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading}"))..];
    let start = after.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let end = after[start..].find("```").expect("the block ends");
    after[start..start + end].to_string()
}

#[test]
fn the_example_pipeline_is_valid_yaml_and_a_valid_pipeline() {
    let yaml = readme_yaml("## pipeline.yaml");
    yaml_serde::from_str::<yaml_serde::Value>(&yaml)
        .unwrap_or_else(|e| panic!("the README's pipeline.yaml is not YAML: {e}\n{yaml}"));
    // With the files it names, pipe loads it.
    let env = TestEnv::new()
        .file("pipeline.yaml", &yaml)
        .params("split: {seed: 1}\nfit: {C: 1.0}\nsynth: {rows: 10}\n")
        .file("config.yaml", "owner: ada\n")
        .file("hyper.yaml", "lr: 0.1\nlayers: 2\n")
        .file("other.yaml", "a: 1\n");
    let out = env.pipe(&["dag"]).ok();
    insta::assert_snapshot!(out.stdout, @r"
        ● generate
        │
        ● prepare  Split the raw data
        │
        ● train

        ● sweep@small

        ● sweep@large

        ● grid@cnn-0.1

        ● grid@cnn-0.01

        ● grid@xgb-0.1

        ● grid@xgb-0.01
        ");
}
