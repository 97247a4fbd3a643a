// The flat tables the tokenizers keep (text/tokenizer_detail.h): StringTable (strings by index
// in one buffer), StringIndex (an open-addressing hash table of int32 values whose keys live
// elsewhere) and PieceIndex (ids by piece over a StringTable); and, through tokenizer.json, the
// aliases the HF loader keeps for tokens whose id an added token of other content took.

#include "test_support.h"

#include "novaq/text/tokenizer.h"
#include "novaq/text/tokenizer_detail.h"

#include <QTemporaryDir>
#include <QTest>

#include <map>
#include <set>
#include <string>
#include <vector>

using novaq::text::MergeTable;
using novaq::text::PieceIndex;
using novaq::text::StringIndex;
using novaq::text::StringTable;

namespace {

// An index over `keys`: value i stands for keys[i].
struct Keys {
    std::vector<std::string> keys;
    std::string_view operator()(int32_t v) const { return keys.at(static_cast<size_t>(v)); }
};

// The home slot StringIndex gives a key in a table of `slots` slots (multiply-shift of the
// hash's low 32 bits), to build keys that collide.
size_t homeSlot(std::string_view key, size_t slots)
{
    return static_cast<size_t>((static_cast<uint64_t>(static_cast<uint32_t>(StringIndex::hash(key))) * slots) >> 32);
}

} // namespace

class TestTextTables : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void stringTable();
    void emptyIndex();
    void emptyStringKey();
    void collisions();
    void manyKeys();
    void replaceAndKeep();
    void remapValues();
    void pieceIndexDuplicates();
    void mergeTable_data();
    void mergeTable();
    void hfAliasKeepsItsId();
};

void TestTextTables::stringTable()
{
    StringTable t;
    QCOMPARE(t.size(), size_t{0});
    QVERIFY(t.empty());
    t.push_back("abc");
    t.push_back("");
    t.push_back(std::string("\0x\xE2\x96\x81", 5)); // a NUL and UTF-8 bytes are kept as they are
    t.push_back("abc");
    QCOMPARE(t.size(), size_t{4});
    QVERIFY(t[0] == "abc");
    QVERIFY(t[1].empty());
    QVERIFY(t[2] == std::string_view("\0x\xE2\x96\x81", 5));
    QVERIFY(t[3] == "abc");
    t.shrinkToFit();
    QVERIFY(t[2] == std::string_view("\0x\xE2\x96\x81", 5));
    QVERIFY(t.memoryBytes() >= 11 + 5 * sizeof(uint32_t));
    StringTable moved = std::move(t);
    QCOMPARE(moved.size(), size_t{4});
    QVERIFY(moved[3] == "abc");
}

void TestTextTables::emptyIndex()
{
    const Keys k{{"a"}};
    StringIndex never;
    QCOMPARE(never.find("a", k), -1);
    QCOMPARE(never.find("", k), -1);
    QVERIFY(never.empty());
    PieceIndex pieces;
    const StringTable none;
    QCOMPARE(pieces.find(none, "a"), -1);
    StringIndex sized; // sized but empty: every probe ends on an empty slot
    sized.reset(100);
    QCOMPARE(sized.find("a", k), -1);
    QCOMPARE(sized.size(), size_t{0});
}

void TestTextTables::emptyStringKey()
{
    const Keys k{{"", "a", " "}};
    StringIndex index;
    QCOMPARE(index.find("", k), -1);
    QCOMPARE(index.insert("a", 1, k, false), -1);
    QCOMPARE(index.find("", k), -1); // not there: not confused with "a" or an empty slot
    QCOMPARE(index.insert("", 0, k, false), -1);
    QCOMPARE(index.insert(" ", 2, k, false), -1);
    QCOMPARE(index.find("", k), 0);
    QCOMPARE(index.find(" ", k), 2);
    QCOMPARE(index.find("a", k), 1);
    QCOMPARE(index.insert("", 0, k, false), 0); // already there
    QCOMPARE(index.size(), size_t{3});
}

// Keys that share a home slot, and runs that wrap past the last slot, are all found; keys
// probing through them that are not there are not.
void TestTextTables::collisions()
{
    const size_t slots = 16; // reset(10) sizes the table to max(16, 10 * 3 / 2) slots
    Keys k;
    std::vector<std::string> sameHome;   // home slot 3
    std::vector<std::string> lastHome;   // home slot 15: their run wraps to slot 0
    std::vector<std::string> missingAt3; // home slot 3 too, never inserted
    for (int i = 0; sameHome.size() < 4 || lastHome.size() < 3 || missingAt3.size() < 3; ++i) {
        const std::string key = "key" + std::to_string(i);
        const size_t home = homeSlot(key, slots);
        if (home == 3 && sameHome.size() < 4)
            sameHome.push_back(key);
        else if (home == 3 && missingAt3.size() < 3)
            missingAt3.push_back(key);
        else if (home == 15 && lastHome.size() < 3)
            lastHome.push_back(key);
    }
    StringIndex index;
    index.reset(10);
    QCOMPARE(index.memoryBytes(), slots * 8);
    for (const auto& group : {sameHome, lastHome})
        for (const std::string& key : group) {
            k.keys.push_back(key);
            QCOMPARE(index.insert(key, static_cast<int32_t>(k.keys.size() - 1), k, false), -1);
        }
    QCOMPARE(index.size(), size_t{7});
    QCOMPARE(index.memoryBytes(), slots * 8); // no growth below 3/4 full
    for (size_t v = 0; v < k.keys.size(); ++v)
        QCOMPARE(index.find(k.keys[v], k), static_cast<int32_t>(v));
    for (const std::string& key : missingAt3)
        QCOMPARE(index.find(key, k), -1);
    QCOMPARE(index.find("key", k), -1);
}

// 200,000 keys inserted one by one into an unsized table (it grows), then looked up; as many
// keys that are not there miss.
void TestTextTables::manyKeys()
{
    Keys k;
    const int n = 200000;
    k.keys.reserve(n);
    StringIndex index;
    for (int i = 0; i < n; ++i) {
        k.keys.push_back("\xC4\xA0piece" + std::to_string(i * 7));
        QCOMPARE(index.insert(k.keys.back(), i, k, false), -1);
    }
    QCOMPARE(index.size(), size_t(n));
    QVERIFY(index.memoryBytes() <= size_t(n) * 2 * 8 + 64); // 8 bytes a slot, at least half full after growing
    for (int i = 0; i < n; ++i) {
        if (index.find(k.keys[static_cast<size_t>(i)], k) != i)
            QFAIL(qPrintable(QString("key %1 not found").arg(i)));
        if (index.find("\xC4\xA0piece" + std::to_string(i * 7 + 1), k) != -1)
            QFAIL(qPrintable(QString("missing key %1 found").arg(i * 7 + 1)));
    }
    // Prefixes and extensions of keys are other keys.
    QCOMPARE(index.find("\xC4\xA0piec", k), -1);
    QCOMPARE(index.find("\xC4\xA0piece00", k), -1);
}

void TestTextTables::replaceAndKeep()
{
    // Values 0 and 2 stand for the same key, as duplicate tokens do.
    const Keys k{{"dup", "other", "dup"}};
    StringIndex index;
    QCOMPARE(index.insert("dup", 0, k, false), -1);
    QCOMPARE(index.insert("dup", 2, k, false), 0); // kept
    QCOMPARE(index.find("dup", k), 0);
    QCOMPARE(index.insert("dup", 2, k, true), 0); // replaced
    QCOMPARE(index.find("dup", k), 2);
    QCOMPARE(index.insert("other", 1, k, true), -1);
    QCOMPARE(index.size(), size_t{2});
}

void TestTextTables::remapValues()
{
    // Built with values that index a list of entries, then turned into ids of the same keys.
    const Keys entries{{"x", "y", "z"}};
    const Keys byId{{"", "", "", "", "", "", "", "", "", "", "z", "y", "x"}};
    StringIndex index;
    for (int32_t e = 0; e < 3; ++e)
        index.insert(entries.keys[static_cast<size_t>(e)], e, entries, false);
    index.remapValues([](int32_t e) { return 12 - e; });
    QCOMPARE(index.find("x", byId), 12);
    QCOMPARE(index.find("y", byId), 11);
    QCOMPARE(index.find("z", byId), 10);
    QCOMPARE(index.find("w", byId), -1);
}

// PieceIndex over a vocabulary with a repeated piece: the first id stays, or the last replaces
// it (SentencePiece refuses the repeat, GGUF lets the later token win).
void TestTextTables::pieceIndexDuplicates()
{
    StringTable pieces;
    for (const char* p : {"<unk>", "a", "b", "a", "ab"})
        pieces.push_back(p);
    PieceIndex first;
    PieceIndex last;
    first.reset(pieces.size());
    for (int32_t id = 0; id < 5; ++id) {
        const int32_t before = first.insert(pieces, id, false);
        QCOMPARE(before, id == 3 ? 1 : -1);
        last.insert(pieces, id, true);
    }
    QCOMPARE(first.find(pieces, "a"), 1);
    QCOMPARE(last.find(pieces, "a"), 3);
    QCOMPARE(first.find(pieces, "ab"), 4);
    QCOMPARE(first.find(pieces, "ba"), -1);
    QCOMPARE(first.size(), size_t{4});
}

void TestTextTables::mergeTable_data()
{
    QTest::addColumn<bool>("packed");
    QTest::newRow("packed, 8 bytes a merge") << true;
    QTest::newRow("12 bytes a merge") << false;
}

// Pairs found with their rank and merged id, the first rank of a repeated pair kept, pairs
// and ids that are not there (negative, past the vocabulary, a left id without merges) missed.
void TestTextTables::mergeTable()
{
    QFETCH(bool, packed);
    const size_t vocab = 3000;
    std::vector<MergeTable::Raw> raw;
    std::map<std::pair<int32_t, int32_t>, std::pair<int32_t, int32_t>> expected; // first rank wins
    int32_t rank = 0;
    for (int32_t left = 0; left < 2999; left += 3)
        for (int32_t right = (left * 7) % 11; right < 2999; right += 97 + left % 5) {
            const int32_t merged = (left + right) % 2999;
            raw.push_back({left, right, rank, merged});
            expected.emplace(std::make_pair(left, right), std::make_pair(rank, merged));
            ++rank;
        }
    raw.push_back({3, 5, rank, 2998}); // left 3's rights are 10, 110, ...: one more
    expected.emplace(std::make_pair(3, 5), std::make_pair(rank++, 2998));
    raw.push_back({raw[7].left, raw[7].right, rank++, 1}); // a repeat: the earlier rank stays
    std::reverse(raw.begin(), raw.end());                  // any order
    const MergeTable table(raw, vocab, packed);
    QCOMPARE(table.packed(), packed);
    for (const auto& [pair, value] : expected) {
        const MergeTable::Merge m = table.find(pair.first, pair.second);
        if (m.rank != value.first || m.merged != value.second)
            QFAIL(qPrintable(
                QString("merge %1 %2: rank %3 merged %4").arg(pair.first).arg(pair.second).arg(m.rank).arg(m.merged)));
        if (!expected.contains({pair.first, pair.second + 1}) && table.find(pair.first, pair.second + 1).rank != -1)
            QFAIL("a pair that is not a merge was found");
    }
    QCOMPARE(table.find(1, 0).rank, -1);  // left 1 starts no merge
    QCOMPARE(table.find(-1, 0).rank, -1); // negative ids
    QCOMPARE(table.find(0, -1).rank, -1);
    QCOMPARE(table.find(3000, 0).rank, -1); // past the vocabulary
    QCOMPARE(table.find(2999, 0).rank, -1); // the last id, without merges
    QCOMPARE(MergeTable().find(0, 0).rank, -1);
    QVERIFY(table.memoryBytes() >= (vocab + 1) * 4 + expected.size() * (packed ? 8 : 12));
}

// tokenizer.json: an added token given the id of a model.vocab token of other content takes the
// id's piece, while the vocabulary token keeps mapping to that id (as the std::unordered_map
// this loader used did); here "c" -> 3, and 3's piece is "<x>".
void TestTextTables::hfAliasKeepsItsId()
{
    const std::string json = R"({
        "version": "1.0",
        "added_tokens": [{"id": 3, "content": "<x>", "special": false, "lstrip": false, "rstrip": false,
                          "normalized": false, "single_word": false}],
        "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null,
        "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "c": 3}, "merges": ["a b"]}
    })";
    QTemporaryDir dir;
    const std::filesystem::path path = novaq::test::toPath(dir.path()) / "tokenizer.json";
    novaq::test::writeAll(path, json);
    const auto t = novaq::loadHfTokenizerJson(path);
    QCOMPARE(t->vocabSize(), 4);
    QCOMPARE(t->piece(3), std::string("<x>"));
    QCOMPARE(t->encode("ab", false), (std::vector<int32_t>{2}));
    QCOMPARE(t->encode("c", false), (std::vector<int32_t>{3}));
    QCOMPARE(t->encode("cab<x>a", false), (std::vector<int32_t>{3, 2, 3, 0}));
}

QTEST_GUILESS_MAIN(TestTextTables)
#include "test_text_tables.moc"
