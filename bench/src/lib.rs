//! Fixtures for Aerie's benchmarks: large, valid components and packages built in memory, and
//! synthetic plugin catalogues written straight into a registry database ([`catalog`]).

pub mod catalog;

use aerie_core::package::{COMPONENT_FILE, MANIFEST_FILE, PackageFile, write_package};
use wasm_encoder::{
    CodeSection, Component, ComponentExportKind, ComponentExportSection, ComponentInstanceSection,
    CustomSection, Function, FunctionSection, Instruction, Module, ModuleSection, TypeSection,
    ValType,
};

/// The manifest of the large fixture package.
pub const LARGE_MANIFEST: &str = r#"
[plugin]
name = "bench/large"
version = "1.0.0"
description = "A large component for benchmarks"
license = "MIT"
categories = ["other"]
api = "0.1"

[[provides.routes]]
path = "/*"
guard = "public"
"#;

/// A valid component of at least `size` bytes: a core module of many arithmetic functions
/// with branches and calls (the code a validator must walk), and an HTTP handler export.
pub fn large_component(size: usize) -> Vec<u8> {
    let mut types = TypeSection::new();
    types
        .ty()
        .function([ValType::I32, ValType::I32], [ValType::I32]);
    let mut functions = FunctionSection::new();
    let mut code = CodeSection::new();
    let mut count = 0u32;
    let mut written = 0usize;
    while written < size {
        functions.function(0);
        let mut body = Function::new([(2, ValType::I32), (1, ValType::I64)]);
        for step in 0..40u32 {
            body.instruction(&Instruction::LocalGet(0))
                .instruction(&Instruction::I32Const(
                    (step as i32).wrapping_mul(2_654_435),
                ))
                .instruction(&Instruction::I32Add)
                .instruction(&Instruction::LocalGet(1))
                .instruction(&Instruction::I32Xor)
                .instruction(&Instruction::LocalTee(2))
                .instruction(&Instruction::I32Eqz)
                .instruction(&Instruction::If(wasm_encoder::BlockType::Empty))
                .instruction(&Instruction::LocalGet(2))
                .instruction(&Instruction::I64ExtendI32U)
                .instruction(&Instruction::LocalSet(4))
                .instruction(&Instruction::End)
                .instruction(&Instruction::LocalGet(2))
                .instruction(&Instruction::LocalSet(0));
            if count > 0 && step % 10 == 0 {
                body.instruction(&Instruction::LocalGet(0))
                    .instruction(&Instruction::LocalGet(1))
                    .instruction(&Instruction::Call(count - 1))
                    .instruction(&Instruction::LocalSet(3));
            }
        }
        body.instruction(&Instruction::LocalGet(0))
            .instruction(&Instruction::End);
        written += body.byte_len();
        code.function(&body);
        count += 1;
    }
    let mut module = Module::new();
    module.section(&types).section(&functions).section(&code);

    let mut component = Component::new();
    component.section(&ModuleSection(&module));
    let mut instances = ComponentInstanceSection::new();
    instances.export_items(Vec::<(&str, ComponentExportKind, u32)>::new());
    component.section(&instances);
    let mut exports = ComponentExportSection::new();
    exports.export(
        "wasi:http/incoming-handler@0.2.12",
        ComponentExportKind::Instance,
        0,
        None,
    );
    component.section(&exports);
    component.finish()
}

/// A package of about `size` bytes for `name` at `version`: an HTTP handler component padded
/// with a custom section of incompressible bytes, so the archive is as large as asked.
pub fn sized_package(name: &str, version: &str, size: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64 ^ size as u64;
    let noise: Vec<u8> = (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let mut component = Component::new();
    component.section(&CustomSection {
        name: "padding".into(),
        data: noise.into(),
    });
    let mut instances = ComponentInstanceSection::new();
    instances.export_items(Vec::<(&str, ComponentExportKind, u32)>::new());
    component.section(&instances);
    let mut exports = ComponentExportSection::new();
    exports.export(
        "wasi:http/incoming-handler@0.2.12",
        ComponentExportKind::Instance,
        0,
        None,
    );
    component.section(&exports);
    write_package(&[
        PackageFile {
            name: MANIFEST_FILE.to_string(),
            bytes: aerie_test_support::archive::manifest(name, version).into_bytes(),
        },
        PackageFile {
            name: COMPONENT_FILE.to_string(),
            bytes: component.finish(),
        },
    ])
    .expect("the fixture's files are package files")
}

/// A package holding [`LARGE_MANIFEST`] and a [`large_component`] of `size` bytes.
pub fn large_package(size: usize) -> Vec<u8> {
    write_package(&[
        PackageFile {
            name: MANIFEST_FILE.to_string(),
            bytes: LARGE_MANIFEST.as_bytes().to_vec(),
        },
        PackageFile {
            name: COMPONENT_FILE.to_string(),
            bytes: large_component(size),
        },
    ])
    .expect("the fixture's files are package files")
}

/// This process's peak resident memory (`VmHWM` in Linux's `/proc/self/status`), in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let value = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?;
    value.trim().strip_suffix("kB")?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use aerie_core::package::{PackageLimits, read_package};

    use super::*;

    #[test]
    fn sized_packages_are_valid_and_about_as_large_as_asked() {
        let bytes = sized_package("bench/p16k", "1.0.0", 16 * 1024);
        assert!(
            (16 * 1024..17 * 1024 + 512).contains(&bytes.len()),
            "{}",
            bytes.len()
        );
        read_package(&bytes, &PackageLimits::default()).unwrap();
    }

    #[test]
    fn the_large_package_is_valid_and_as_large_as_asked() {
        let package = read_package(&large_package(1 << 20), &PackageLimits::default()).unwrap();
        assert!(package.component_bytes().len() >= 1 << 20);
        assert_eq!(package.manifest.plugin.name.as_str(), "bench/large");
    }
}
