#include "test_support.h"

#include <bit>
#include <cstring>
#include <fstream>
#include <random>
#include <stdexcept>

namespace novaq::test {

std::filesystem::path demoModelDir() { return std::filesystem::path(NOVAQ_DEMO_MODEL_DIR); }
std::filesystem::path testDataDir() { return std::filesystem::path(NOVAQ_TEST_DATA_DIR); }
std::filesystem::path modelsDir() { return testDataDir() / "models"; }
std::filesystem::path textDir() { return testDataDir() / "text"; }
std::filesystem::path storiesGguf() { return modelsDir() / "stories260K" / "stories260K.gguf"; }
std::filesystem::path modelFor(const QString& name) { return name == "demo" ? demoModelDir() : storiesGguf(); }

std::vector<char> readAll(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw std::runtime_error("cannot read " + path.string());
    return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

void writeAll(const std::filesystem::path& path, const std::vector<char>& bytes)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out)
        throw std::runtime_error("cannot write " + path.string());
}

void writeAll(const std::filesystem::path& path, const std::string& bytes)
{
    writeAll(path, std::vector<char>(bytes.begin(), bytes.end()));
}

std::string makeSafetensors(const std::string& headerJson, const std::string& data)
{
    std::string header = headerJson;
    while (header.size() % 8 != 0)
        header.push_back(' ');
    std::string out(8, '\0');
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i)
        out[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
    return out + header + data;
}

std::vector<float> gaussian(size_t count, uint64_t seed)
{
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> v(count);
    for (float& x : v)
        x = dist(rng);
    return v;
}

std::string le(uint64_t value, int bytes)
{
    std::string out;
    for (int i = 0; i < bytes; ++i)
        out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
    return out;
}

std::string f32Bytes(std::initializer_list<float> values)
{
    std::string out;
    for (float v : values)
        out += le(std::bit_cast<uint32_t>(v), 4);
    return out;
}

std::vector<float> readTensor(const novaq::ModelReader& reader, size_t index)
{
    std::vector<float> out(static_cast<size_t>(reader.tensors()[index].numel()));
    reader.readFloat(index, out);
    return out;
}

std::map<std::string, size_t> indexByName(const novaq::ModelReader& reader)
{
    std::map<std::string, size_t> out;
    for (size_t i = 0; i < reader.tensors().size(); ++i)
        out[reader.tensors()[i].name] = i;
    return out;
}

std::optional<Failure> failureOf(const std::function<void()>& fn)
{
    try {
        fn();
    } catch (const novaq::Error& e) {
        return Failure{e.kind(), QString::fromStdString(e.what())};
    }
    return std::nullopt;
}

std::string failureMessage(const std::function<void()>& fn, novaq::ErrorKind* kind)
{
    const std::optional<Failure> failure = failureOf(fn);
    if (!failure)
        return "(no error)";
    if (kind)
        *kind = failure->kind;
    return failure->message.toStdString();
}

} // namespace novaq::test
