# SPDX-License-Identifier: Apache-2.0
"""The programs tests/preload/run_writes.py runs: each writes into a
directory (argv[1]) from the source files in argv[2], once on local disk and
once on a writable mount under the shim; an optional reader then runs in a
fresh process on each. Outputs must match, and so must the bytes of every
file (local) and object (bucket, and read back through the shim)."""

# name -> (kind, writer, reader). kind "py": Python source, argv[1] = the
# directory, argv[2] = the sources, and under the shim argv[3] = s3rver's
# directory of the bucket and argv[4] = the directory's key prefix ("" and
# "" on local disk). kind "sh": a bash command with {R} and {S} for the
# first two.
#
# WAIT_PART, for the Python programs that need it: wait_part_sent(name)
# returns once the server holds the first part of the file's multipart
# upload (under the shim; at once on local disk), so that what the program
# writes next lands in a part already sent. argv[3] is s3rver's directory of
# the bucket (it has no ListParts: its files are watched), or radosgw's
# endpoint ("http://..."), asked with ListMultipartUploads and ListParts.
WAIT_PART = """
import glob, os, sys, time
def _first_part_sent(key):
    if sys.argv[3].startswith('http'):
        import boto3
        from botocore.config import Config
        c = boto3.client('s3', endpoint_url=sys.argv[3], aws_access_key_id='S3RVER', aws_secret_access_key='S3RVER',
                         region_name='us-east-1', config=Config(s3={'addressing_style': 'path'}))
        for u in c.list_multipart_uploads(Bucket='data', Prefix=key).get('Uploads', []):
            if u['Key'] == key and c.list_parts(Bucket='data', Key=key, UploadId=u['UploadId']).get('Parts'):
                return True
        return False
    for d in glob.glob(os.path.join(sys.argv[3], '._S3rver_uploads', '*')):
        try:
            if open(os.path.join(d, 'key')).read() == key and os.path.exists(os.path.join(d, '1.md5')):
                return True
        except OSError:
            pass
    return False
def wait_part_sent(name):
    if len(sys.argv) < 5 or not sys.argv[3]:
        return
    key = sys.argv[4] + name
    for _ in range(3000):
        if _first_part_sent(key):
            return
        time.sleep(0.01)  # poll: the server's record of the part (no event reaches this process)
    sys.exit('the first part of ' + key + ' was never sent')
"""


CASES = {
    "py_write_close": ("py", """
        import os, sys
        r = sys.argv[1]
        data = bytes(range(256)) * 4096 * 20 + b'tail'  # 20 MiB + 4: streamed in parts
        with open(os.path.join(r, 'big.bin'), 'wb') as f:
            for i in range(0, len(data), 1 << 20):
                f.write(data[i:i + (1 << 20)])
        with open(os.path.join(r, 'small.txt'), 'w') as f:
            f.write('hello\\n' * 100)
            print('exists while open', os.path.exists(f.name), os.path.isfile(f.name))
        open(os.path.join(r, 'empty'), 'w').close()
        print(os.path.getsize(os.path.join(r, 'big.bin')), open(os.path.join(r, 'small.txt')).read(12))
    """, None),
    "py_append": ("py", """
        import os, sys
        p = os.path.join(sys.argv[1], 'log.txt')
        for i in range(3):
            with open(p, 'a') as f:
                f.write(f'line {i}\\n')
                f.flush()
                print(os.fstat(f.fileno()).st_size, os.stat(p).st_size)
        print(open(p).read())
    """, """
        import sys
        print(open(sys.argv[1] + '/log.txt').read())
    """),
    "py_rplus_seek_write": ("py", """
        import hashlib, os, sys
        p = os.path.join(sys.argv[1], 'data.bin')
        with open(p, 'wb') as f:
            f.write(b'\\0' * (3 << 20))
        with open(p, 'r+b') as f:
            f.seek(1 << 20)
            f.write(b'PATCH' * 1000)
            f.seek(0, 2)
            f.write(b'END')
            f.seek(1 << 20)
            print(f.read(10))
        with open(p, 'rb') as f:
            print(hashlib.sha256(f.read()).hexdigest())
    """, None),
    "py_replace_and_rename_open": ("py", """
        import os, sys
        r = sys.argv[1]
        tmp, final = os.path.join(r, 'ckpt.tmp'), os.path.join(r, 'ckpt')
        with open(tmp, 'wb') as f:
            f.write(b'v1' * 1000)
        os.replace(tmp, final)
        with open(tmp, 'wb') as f:
            f.write(b'v2' * 3000)
        os.replace(tmp, final)  # over an object
        f = open(os.path.join(r, 'open.tmp'), 'wb')
        f.write(b'x' * 5000)
        f.flush()
        os.rename(f.name, os.path.join(r, 'renamed_while_open'))
        f.write(b'y' * 10)
        f.close()
        print(sorted(os.listdir(r)), os.path.getsize(final), os.path.exists(tmp))
    """, None),
    "py_fsync_then_more": ("py", """
        import os, subprocess, sys
        p = os.path.join(sys.argv[1], 'journal')
        f = open(p, 'wb')
        f.write(b'a' * 10000)
        f.flush()
        os.fsync(f.fileno())
        # Another process sees what was synced.
        seen = subprocess.run([sys.executable, '-c', 'import sys; print(len(open(sys.argv[1], "rb").read()))', p],
                              capture_output=True, text=True)
        print('other process', seen.stdout.strip(), seen.returncode)
        f.write(b'b' * 20000)
        f.close()
        print(os.path.getsize(p))
    """, None),
    "torch_save_load": ("py", """
        import os, sys, torch
        torch.manual_seed(0)
        sd = {f'layer{i}.weight': torch.randn(1024, 1024) for i in range(17)}  # 68 MiB
        sd['step'] = torch.tensor(7)
        torch.save(sd, os.path.join(sys.argv[1], 'model.pt'))
        print(sorted(sd)[:3], os.path.getsize(os.path.join(sys.argv[1], 'model.pt')) > (64 << 20))
    """, """
        import hashlib, sys, torch
        sd = torch.load(sys.argv[1] + '/model.pt')
        h = hashlib.sha256()
        for k in sorted(sd):
            h.update(k.encode())
            h.update(sd[k].numpy().tobytes())
        print(len(sd), h.hexdigest())
    """),
    "numpy_save_load": ("py", """
        import os, sys
        import numpy as np
        r = sys.argv[1]
        a = np.arange(3 << 20, dtype=np.float32).reshape(-1, 1024)  # 12 MiB
        np.save(os.path.join(r, 'a.npy'), a)
        np.savez(os.path.join(r, 'b.npz'), x=a[:10], y=np.ones(5))
        a[:7].tofile(os.path.join(r, 'raw.bin'))
    """, """
        import sys
        import numpy as np
        r = sys.argv[1]
        a = np.load(r + '/a.npy')
        b = np.load(r + '/b.npz')
        m = np.load(r + '/a.npy', mmap_mode='r')
        print(a.shape, float(a.sum()), float(b['x'].sum()), float(b['y'].sum()), float(m[-1].sum()))
    """),
    "dcp_filesystem_writer": ("py", """
        # torch.distributed.checkpoint's FileSystemWriter, as files: one per
        # rank written and fsync'ed, then .metadata.tmp renamed over .metadata.
        import os, pickle, sys
        r = sys.argv[1]
        for step in range(2):
            files = []
            for rank in range(2):
                name = f'__{rank}_0.distcp'
                with open(os.path.join(r, name), 'wb') as f:
                    f.write(bytes([65 + rank + step]) * ((3 << 20) + rank * 4096 + step))
                    f.flush()
                    os.fsync(f.fileno())
                files.append(name)
            tmp, meta = os.path.join(r, '.metadata.tmp'), os.path.join(r, '.metadata')
            with open(tmp, 'wb') as f:
                pickle.dump({'step': step, 'files': files}, f)
                f.flush()
                os.fsync(f.fileno())
            if os.path.exists(meta):
                os.remove(meta)
            os.rename(tmp, meta)
        print(sorted(os.listdir(r)))
    """, """
        import os, pickle, sys
        r = sys.argv[1]
        m = pickle.load(open(r + '/.metadata', 'rb'))
        print(m, [os.path.getsize(os.path.join(r, f)) for f in m['files']])
    """),
    "safetensors_mmap": ("py", """
        import json, os, struct, sys
        p = os.path.join(sys.argv[1], 'model.safetensors')
        tensors = {'a': bytes(range(256)) * 4096, 'b': b'\\x01\\x02' * 300000}
        header, off = {}, 0
        for k, v in tensors.items():
            header[k] = {'dtype': 'U8', 'shape': [len(v)], 'data_offsets': [off, off + len(v)]}
            off += len(v)
        h = json.dumps(header).encode()
        with open(p, 'wb') as f:
            f.write(struct.pack('<Q', len(h)))
            f.write(h)
            for v in tensors.values():
                f.write(v)
    """, """
        import hashlib, json, mmap, struct, sys
        with open(sys.argv[1] + '/model.safetensors', 'rb') as f:
            m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        n = struct.unpack('<Q', m[:8])[0]
        header = json.loads(m[8:8 + n])
        for k, v in sorted(header.items()):
            a, b = v['data_offsets']
            print(k, hashlib.sha256(m[8 + n + a:8 + n + b]).hexdigest())
    """),
    "cp_cp_r_cp_a": ("sh",
        "cp {S}/one.txt {R}/ && cp {S}/big.bin {R}/big.bin && cp -r {S}/tree {R}/tree && "
        "cp -a {S}/tree {R}/tree_a && cp --reflink=auto {S}/one.txt {R}/reflinked && ls -R {R}", None),
    "tar_x": ("sh", "tar -xf {S}/tree.tar -C {R} && find {R} | sort | sed 's|{R}|R|'", None),
    "mkdir_p_mv_rm": ("sh",
        "mkdir -p {R}/a/b/c && cp {S}/one.txt {R}/a/b/c/ && mv {R}/a/b/c/one.txt {R}/a/moved.txt && "
        "mv {R}/a/b {R}/a/b2 && cp -r {S}/tree {R}/gone && rm -r {R}/gone && cp {S}/one.txt {R}/del && "
        "rm {R}/del && mkdir {R}/empty && touch {R}/a/touched && ls -R {R}", None),
    "shell_redirects": ("sh",
        "echo first > {R}/out.txt && echo second >> {R}/out.txt && cat {S}/one.txt > {R}/cat.txt && "
        "cat {S}/one.txt >> {R}/cat.txt && (exec > {R}/exec.txt; echo x; /bin/echo y; cat {S}/one.txt) && "
        "bash -c 'cat \"$0\" > \"$1\"' {S}/big.bin {R}/oneshot.bin && printf 'p%s\\n' 1 2 3 > {R}/printf.txt && "
        "cat {R}/out.txt {R}/cat.txt {R}/exec.txt", None),
    "dd_conv_notrunc": ("sh",
        "cp {S}/big.bin {R}/f.bin && dd if={S}/one.txt of={R}/f.bin bs=1 seek=1000000 conv=notrunc status=none && "
        "dd if=/dev/zero of={R}/z.bin bs=64k count=20 status=none && "
        "dd if={S}/one.txt of={R}/z.bin bs=512 seek=3 conv=notrunc status=none && sha256sum {R}/f.bin | cut -c1-64",
        "sha256sum {R}/f.bin {R}/z.bin | cut -c1-64"),
    "sqlite3_cli": ("sh", "sqlite3 {R}/db.sqlite < {S}/fill.sql && sqlite3 {R}/db.sqlite < {S}/update.sql",
                    "sqlite3 {R}/db.sqlite 'pragma integrity_check; select count(*), sum(length(v)), min(v) from t;'"),
    "fork_shared_fd": ("py", """
        import os, sys
        # The child writes into a part the parent already sent: the parent's
        # commit must find it.
        p = os.path.join(sys.argv[1], 'forked.txt')
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, b'parent before\\n' * 700000)  # 9.8 MiB
        wait_part_sent('forked.txt')
        pid = os.fork()
        if pid == 0:
            os.pwrite(fd, b'CHILD WROTE INTO THE FIRST PART', 100)
            os._exit(0)
        os.waitpid(pid, 0)
        os.write(fd, b'parent after\\n')
        os.close(fd)
        # Children appending through the shared offset, one leaving with
        # _exit, one closing its copy and exiting normally.
        p2 = os.path.join(sys.argv[1], 'appended.txt')
        fd = os.open(p2, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, b'parent before\\n')
        for how in ('_exit', 'exit'):
            pid = os.fork()
            if pid == 0:
                os.write(fd, f'child {how}\\n'.encode() * 50000)
                if how == '_exit':
                    os._exit(0)
                os.close(fd)
                sys.exit(0)
            os.waitpid(pid, 0)
        os.write(fd, b'parent after\\n')
        os.close(fd)
        print(os.path.getsize(p), os.path.getsize(p2))
    """, None),
    "mmap_shared_write": ("py", """
        import mmap, os, sys
        p = os.path.join(sys.argv[1], 'mapped.bin')
        with open(p, 'w+b') as f:
            f.write(b'm' * (9 << 20))  # its first part is sent while it writes
            f.flush()
            wait_part_sent('mapped.bin')
            m = mmap.mmap(f.fileno(), 0)
            m[100:120] = b'WRITTEN THROUGH MMAP'
            m.flush()
            m.close()
        print(open(p, 'rb').read(130)[95:125])
    """, None),
    "shutil_copy_sendfile": ("py", """
        import os, shutil, sys
        shutil.copyfile(os.path.join(sys.argv[2], 'big.bin'), os.path.join(sys.argv[1], 'copied.bin'))
        shutil.copy2(os.path.join(sys.argv[2], 'one.txt'), os.path.join(sys.argv[1], 'copy2.txt'))
        shutil.copytree(os.path.join(sys.argv[2], 'tree'), os.path.join(sys.argv[1], 'tree'))
        print(sorted(os.listdir(sys.argv[1])))
    """, None),
    "subprocess_stdout_to_file": ("py", """
        # A child (vfork + exec in subprocess) writes through the fd it was
        # given; the parent writes before and after, then closes.
        import os, subprocess, sys
        p = os.path.join(sys.argv[1], 'combined.log')
        with open(p, 'w') as f:
            f.write('parent\\n')
            f.flush()
            subprocess.run(['/bin/echo', 'child'], stdout=f, check=True)
            subprocess.run(['cat', os.path.join(sys.argv[2], 'one.txt')], stdout=f, check=True)
            f.write('parent again\\n')
        print(open(p).read())
    """, None),
    "exit_without_close": ("py", """
        # A C-style program: stdio never fclosed, an fd never closed; the
        # bytes must still reach the object at exit.
        import ctypes, os, sys
        libc = ctypes.CDLL(None)
        libc.fopen.restype = ctypes.c_void_p
        libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        libc.fputs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        fp = libc.fopen(os.path.join(sys.argv[1], 'stdio_unclosed.txt').encode(), b'w')
        for i in range(2000):
            libc.fputs(f'stdio line {i}\\n'.encode(), fp)
        fd = os.open(os.path.join(sys.argv[1], 'fd_unclosed.bin'), os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b'z' * 12345)
        print('leaving')
    """, None),
    "c_freopen_stdout": ("py", """
        import ctypes, os, sys
        libc = ctypes.CDLL(None)
        libc.freopen.restype = ctypes.c_void_p
        libc.freopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
        stdout = ctypes.c_void_p.in_dll(libc, 'stdout')
        print('before', flush=True)
        if not libc.freopen(os.path.join(sys.argv[1], 'stdout.txt').encode(), b'w', stdout):
            sys.exit('freopen failed')
        libc.puts(b'via C stdout')
        libc.fflush(stdout)
        os.write(1, b'via fd 1\\n')
        print('via python', flush=True)
    """, None),
}
