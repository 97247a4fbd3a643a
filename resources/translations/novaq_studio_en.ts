<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="en" sourcelanguage="en">
  <context>
    <name>novaq::ui::CompressPage</name>
    <message numerus="yes">
      <source>Started: %n tensor(s)</source>
      <translation>
        <numerusform>Started: %n tensor</numerusform>
        <numerusform>Started: %n tensors</numerusform>
      </translation>
    </message>
  </context>
  <context>
    <name>novaq::ui::HubTab</name>
    <message numerus="yes">
      <source>%n model(s) shown, more on Hugging Face. Select one to see its files.</source>
      <translation>
        <numerusform>%n model shown, more on Hugging Face. Select one to see its files.</numerusform>
        <numerusform>%n models shown, more on Hugging Face. Select one to see its files.</numerusform>
      </translation>
    </message>
    <message numerus="yes">
      <source>%n model(s) found. Select one to see its files.</source>
      <translation>
        <numerusform>%n model found. Select one to see its files.</numerusform>
        <numerusform>%n models found. Select one to see its files.</numerusform>
      </translation>
    </message>
    <message numerus="yes">
      <source>%n file(s), %1 in all</source>
      <translation>
        <numerusform>%n file, %1 in all</numerusform>
        <numerusform>%n files, %1 in all</numerusform>
      </translation>
    </message>
  </context>
  <context>
    <name>novaq::ui::MainWindow</name>
    <message numerus="yes">
      <source>%n thread(s)</source>
      <translation>
        <numerusform>%n thread</numerusform>
        <numerusform>%n threads</numerusform>
      </translation>
    </message>
  </context>
  <context>
    <name>novaq::ui::ResultsPage</name>
    <message numerus="yes">
      <source>Format %1.%2, %n tensor(s): structure and checksums are right and every tensor decodes to finite values.</source>
      <translation>
        <numerusform>Format %1.%2, %n tensor: structure and checksums are right and every tensor decodes to finite values.</numerusform>
        <numerusform>Format %1.%2, %n tensors: structure and checksums are right and every tensor decodes to finite values.</numerusform>
      </translation>
    </message>
  </context>
  <context>
    <name>novaq::ui::SettingsPage</name>
    <message numerus="yes">
      <source>%1 - %2 - %3 parameters - %n tensor(s) - %4</source>
      <translation>
        <numerusform>%1 - %2 - %3 parameters - %n tensor - %4</numerusform>
        <numerusform>%1 - %2 - %3 parameters - %n tensors - %4</numerusform>
      </translation>
    </message>
  </context>
  <context>
    <name>novaq::ui::TryItPage</name>
    <message numerus="yes">
      <source>Measured on %1, %Ln token(s). Perplexity is how surprised a model is by the text (lower is better); KL divergence is how far the compressed model's predictions are from the original's (0: the same).</source>
      <translation>
        <numerusform>Measured on %1, %Ln token. Perplexity is how surprised a model is by the text (lower is better); KL divergence is how far the compressed model's predictions are from the original's (0: the same).</numerusform>
        <numerusform>Measured on %1, %Ln tokens. Perplexity is how surprised a model is by the text (lower is better); KL divergence is how far the compressed model's predictions are from the original's (0: the same).</numerusform>
      </translation>
    </message>
    <message numerus="yes">
      <source>%n token(s) so far - %1 tokens/s - %2 in memory</source>
      <translation>
        <numerusform>%n token so far - %1 tokens/s - %2 in memory</numerusform>
        <numerusform>%n tokens so far - %1 tokens/s - %2 in memory</numerusform>
      </translation>
    </message>
    <message numerus="yes">
      <source>Stopped after %n token(s) - %1 tokens/s - %2 in memory</source>
      <translation>
        <numerusform>Stopped after %n token - %1 tokens/s - %2 in memory</numerusform>
        <numerusform>Stopped after %n tokens - %1 tokens/s - %2 in memory</numerusform>
      </translation>
    </message>
    <message numerus="yes">
      <source>%n token(s) - %1 tokens/s - %2 in memory</source>
      <translation>
        <numerusform>%n token - %1 tokens/s - %2 in memory</numerusform>
        <numerusform>%n tokens - %1 tokens/s - %2 in memory</numerusform>
      </translation>
    </message>
  </context>
</TS>
