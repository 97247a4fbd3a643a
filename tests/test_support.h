#pragma once
// Shared helpers of the Qt Test suite.

#include "novaq/formats/model_reader.h"
#include "novaq/io/error.h"

#include <QString>
#include <QTemporaryDir>

#include <filesystem>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace novaq::test {

// tests/data: everything the suite reads lives in the repository, so a fresh clone runs every
// test. modelsDir() holds real model files (tests/data/models, see its README), textDir() text.
std::filesystem::path demoModelDir();
std::filesystem::path testDataDir();
std::filesystem::path modelsDir();
std::filesystem::path textDir();
// stories260K.gguf (a 260 K-parameter llama2.c model as llama.cpp converted it) in modelsDir().
std::filesystem::path storiesGguf();
// "demo" for the demo model, anything else for storiesGguf() (data rows name one of the two).
std::filesystem::path modelFor(const QString& name);

std::vector<char> readAll(const std::filesystem::path& path);
void writeAll(const std::filesystem::path& path, const std::vector<char>& bytes);
void writeAll(const std::filesystem::path& path, const std::string& bytes);

// Builds a safetensors file in memory: header JSON as given (padded to 8), then `data`.
std::string makeSafetensors(const std::string& headerJson, const std::string& data);

// A matrix of i.i.d. N(0,1) floats from a fixed seed.
std::vector<float> gaussian(size_t count, uint64_t seed);

inline std::filesystem::path toPath(const QString& s) { return std::filesystem::path(s.toStdString()); }

// `bytes` little-endian bytes of `value`; F32 values as little-endian bytes.
std::string le(uint64_t value, int bytes);
std::string f32Bytes(std::initializer_list<float> values);

// Tensor `index` of a model as floats; every tensor's index by name.
std::vector<float> readTensor(const novaq::ModelReader& reader, size_t index);
std::map<std::string, size_t> indexByName(const novaq::ModelReader& reader);

// What a call that must fail threw: its kind and message (nullopt when it did not throw).
struct Failure {
    novaq::ErrorKind kind;
    QString message;
};
std::optional<Failure> failureOf(const std::function<void()>& fn);
// The same as text: the message ("(no error)" when nothing was thrown), the kind in *kind.
std::string failureMessage(const std::function<void()>& fn, novaq::ErrorKind* kind = nullptr);

} // namespace novaq::test

// A data file of tests/data that a test needs: missing is a failure (a broken checkout), never a skip.
#define NOVAQ_REQUIRE_DATA(path)                                                                                       \
    QVERIFY2(std::filesystem::exists(path), qPrintable("missing test data " + QString::fromStdString((path).string())))

// The one accepted reason to skip: an optional external tool (say Node.js for a reference
// tokenizer) is not installed. .ci/check-skips fails CI on any other skip.
#define NOVAQ_SKIP_MISSING_TOOL(tool) QSKIP("optional tool missing: " tool)
