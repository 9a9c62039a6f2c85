// The pure parts of the Arista source: version order, specs, the folder tree walk, sidecars.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  compareVersions, findFormat, latestOf, parseFileName, parseFolderTree, parseSpec, resolveSpec, sidecarOf,
} from '../../src/sources/arista-catalog.ts';
import { HoardError } from '../../src/core/errors.ts';

test('EOS versions order numerically: 4.32.10F > 4.32.9F, 4.32.2.1F > 4.32.2F, 4.33.0F > 4.32.10F', () => {
  const sorted = ['4.32.10F', '4.32.2F', '4.33.0F', '4.32.2.1F', '4.32.9F', '4.9.1F'].sort(compareVersions);
  assert.deepEqual(sorted, ['4.9.1F', '4.32.2F', '4.32.2.1F', '4.32.9F', '4.32.10F', '4.33.0F']);
});

test('file names map back to format and version; every format of the issue is known', () => {
  assert.deepEqual(
    ['cEOS-lab-4.32.1F.tar.xz', 'EOS-2GB-4.32.1F-INT.swi', 'EOS-2GB-4.32.1F.swi', 'EOS-4.32.1F.swi', 'EOS-4.32.1F-INT.swi', 'EOS64-4.32.2.1F.swi', 'vEOS64-lab-4.31.4M.qcow2', 'cvp-2024.1.0-kvm.tgz', 'cvp-rpm-installer-2024.1.0']
      .map((n) => { const p = parseFileName(n)!; return `${p.format.format} ${p.version}`; }),
    ['cEOS 4.32.1F', '2GB-INT 4.32.1F', 'EOS-2GB 4.32.1F', 'EOS 4.32.1F', 'INT 4.32.1F', '64 4.32.2.1F', 'vEOS64-lab-qcow2 4.31.4M', 'cvp-kvm 2024.1.0', 'cvp-rpm 2024.1.0'],
  );
  assert.equal(parseFileName('cEOS-lab-4.32.1F.tar.xz.sha512sum'), null);
  assert.equal(findFormat('ceos')!.format, 'cEOS');
});

test('specs: format@version, @latest, @branch, exact file names; bad ones are usage errors with a hint', () => {
  assert.deepEqual(parseSpec('arista:cEOS@4.32.1F'), { kind: 'format', format: findFormat('cEOS'), version: '4.32.1F', selector: 'exact' });
  assert.equal((parseSpec('arista:vEOS-lab@latest') as { selector: string }).selector, 'latest');
  assert.equal((parseSpec('arista:cEOS@4.32') as { selector: string }).selector, 'branch');
  assert.deepEqual(parseSpec('arista:EOS64-4.32.1F.swi'), { kind: 'file', name: 'EOS64-4.32.1F.swi' });
  for (const bad of ['arista:cEOS', 'arista:nope@4.32.1F', 'arista:cEOS@4.32.1X', 'arista:']) {
    assert.throws(() => parseSpec(bad), (e: unknown) => e instanceof HoardError && e.code === 'E_USAGE' && e.hint !== undefined, bad);
  }
});

test('the folder tree walk: nested dirs, entities, paths verbatim; latest only under Active Releases; sidecars found by path', () => {
  const xml = `<cvpFolderList><dir label="EOS"><dir label="Active Releases"><dir label="4.32">
    <dir label="EOS-4.32.1F"><dir label="cEOS-lab">
      <file path="/support/download/EOS-USA/Active Releases/4.32/EOS-4.32.1F/cEOS-lab/cEOS-lab-4.32.1F.tar.xz">cEOS-lab-4.32.1F.tar.xz</file>
      <file path="/support/download/EOS-USA/Active Releases/4.32/EOS-4.32.1F/cEOS-lab/cEOS-lab-4.32.1F.tar.xz.sha512sum">cEOS-lab-4.32.1F.tar.xz.sha512sum</file>
    </dir><dir label="Docs &amp; Notes"/></dir></dir></dir>
    <dir label="EFT"><dir label="EOS-4.40.0F"><file path="/x/cEOS-lab-4.40.0F.tar.xz">cEOS-lab-4.40.0F.tar.xz</file></dir></dir></dir>
    <dir label="CloudVision"><file path="/y/a&amp;b">a&amp;b</file></dir></cvpFolderList>`;
  const files = parseFolderTree(xml);
  assert.deepEqual(files.map((f) => f.dirs.join('/')), [
    'EOS/Active Releases/4.32/EOS-4.32.1F/cEOS-lab', 'EOS/Active Releases/4.32/EOS-4.32.1F/cEOS-lab', 'EOS/EFT/EOS-4.40.0F', 'CloudVision',
  ]);
  assert.equal(files[3]!.name, 'a&b');
  assert.equal(files[3]!.path, '/y/a&b');
  const cEOS = findFormat('cEOS')!;
  assert.equal(latestOf(files, cEOS, {})!.version, '4.32.1F');
  assert.equal(latestOf(files, cEOS, { branch: '4.40' })!.version, '4.40.0F');
  const r = resolveSpec(files, parseSpec('arista:cEOS@latest'));
  assert.equal(sidecarOf(files, r.file)!.file.name, 'cEOS-lab-4.32.1F.tar.xz.sha512sum');
  assert.throws(() => resolveSpec(files, parseSpec('arista:cEOS@4.32.2F')), /Arista has no cEOS-lab-4\.32\.2F\.tar\.xz/);
});
